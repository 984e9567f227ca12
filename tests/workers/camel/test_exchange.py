"""The JSON document of an exchange, as the route posts it, to a record."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from workers.camel.exchange import InvalidExchange, to_record


def document(body: Any, body_class: str | None, **headers: Any) -> bytes:
    fields = {**headers, "SluiceCamelBody": body, "SluiceCamelBodyClass": body_class}
    return json.dumps(fields).encode()


def test_bytes_body_headers_key_origin_and_timestamp() -> None:
    raw = "héllo ✓\n".encode()
    record = to_record(
        document(
            base64.b64encode(raw).decode(),
            "[B",
            CamelFileName="a.txt",
            CamelFileLength=9,
            CamelFileAbsolute=True,
            CamelMessageTimestamp=1700000000000,
            Nothing=None,
            Offset={"value": 0},
        ),
        key_header="CamelFileName",
        origin="file:/in",
    )
    assert record.value == raw
    assert record.key == "a.txt"
    assert dict(record.headers) == {
        "CamelFileName": "a.txt",
        "CamelFileLength": "9",
        "CamelFileAbsolute": "true",
        "CamelMessageTimestamp": "1700000000000",
        "Offset": '{"value":0}',
    }
    assert record.origin == "file:/in"
    assert record.timestamp == 1700000000000


def test_json_bodies_and_keys() -> None:
    assert to_record(document(None, None), key_header="", origin="t:").value is None
    text = to_record(document("ünï", "java.lang.String", k=42), key_header="k", origin="t:")
    assert (text.value, text.key, text.timestamp) == ("ünï", 42, None)
    bean = to_record(
        document({"a": [1]}, "com.example.Bean", k={"x": 1}), key_header="k", origin="t:"
    )
    assert bean.value == {"a": [1]}
    assert bean.key == '{"x":1}'  # LangStream: objects as their JSON text
    assert (
        to_record(document("v", "java.lang.String"), key_header="absent", origin="t:").key is None
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "a JSON object with SluiceCamelBody was expected"),
        (b'{"a": 1}', "a JSON object with SluiceCamelBody was expected"),
        (document("%%%", "[B"), "the body is not base64"),
    ],
)
def test_invalid_documents(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidExchange, match=message):
        to_record(payload, key_header="", origin="t:")
