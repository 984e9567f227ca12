"""Produce requests, push frames, offset tokens and HTTP bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.messages import (
    ProduceRequest,
    check_message_headers,
    decode_offset,
    encode_offset,
    media_type,
    parse_http_body,
    parse_produce_request,
    produce_response,
    push_message,
)
from sluice.events import ConsumedRecord
from sluice.record import Record

JSON_ERROR = "Error while parsing JSON payload: "


def bad(body: bytes | str) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_produce_request(body)
    return caught.value.detail


# --- produce requests ------------------------------------------------------------------------


def test_parse_produce_request() -> None:
    request = parse_produce_request(
        b'{"key": {"id": 1}, "value": [1, "two"], "headers": {"session": "s1"}}'
    )
    assert request == ProduceRequest({"id": 1}, [1, "two"], {"session": "s1"})
    assert request.event_id is None
    assert request.event_type is None
    with pytest.raises(TypeError):
        request.headers["x"] = "y"  # type: ignore[index]


def test_key_or_value_alone() -> None:
    assert parse_produce_request('{"value": "v"}') == ProduceRequest(None, "v")
    assert parse_produce_request('{"key": "k", "headers": null}') == ProduceRequest("k")
    assert parse_produce_request('{"value": 0}').value == 0
    assert parse_produce_request('{"value": false}').value is False


def test_key_and_value_null() -> None:
    assert bad("{}") == "Either key or value must be set."
    assert bad('{"key": null, "value": null, "headers": {"a": "b"}}') == (
        "Either key or value must be set."
    )


def test_invalid_json() -> None:
    assert bad("{") == (
        f"{JSON_ERROR}Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert bad('{"value": NaN}') == f"{JSON_ERROR}NaN is not valid JSON"
    assert bad(b'{"value": "\xff"}').startswith(f"{JSON_ERROR}'utf-8' codec can't decode")


def test_not_an_object() -> None:
    assert bad("[]") == f"{JSON_ERROR}expected a JSON object, not an array"
    assert bad('"v"') == f"{JSON_ERROR}expected a JSON object, not a string"
    assert bad("null") == f"{JSON_ERROR}expected a JSON object, not null"


def test_unknown_fields() -> None:
    assert bad('{"value": "v", "topic": "x"}') == (
        f'{JSON_ERROR}unknown field "topic" (known fields: key, value, headers)'
    )
    assert bad('{"value": "v", "a": 1, "b": 2}') == (
        f'{JSON_ERROR}unknown fields "a", "b" (known fields: key, value, headers)'
    )


def test_headers_must_be_strings() -> None:
    assert bad('{"value": "v", "headers": ["a"]}') == (
        f"{JSON_ERROR}headers must be an object, not an array"
    )
    assert bad('{"value": "v", "headers": {"n": 1}}') == (
        f"{JSON_ERROR}header n must be a string, not a number"
    )
    assert bad('{"value": "v", "headers": {"n": true}}') == (
        f"{JSON_ERROR}header n must be a string, not a boolean"
    )
    assert bad('{"value": "v", "headers": {"n": {}}}') == (
        f"{JSON_ERROR}header n must be a string, not an object"
    )
    assert bad('{"value": "v", "headers": {"n": null}}') == (
        f"{JSON_ERROR}header n must be a string, not null"
    )


def test_check_message_headers() -> None:
    check_message_headers({"a": "1"}, {"session"})
    check_message_headers({}, {"session"})
    with pytest.raises(BadRequest) as caught:
        check_message_headers({"a": "1", "session": "s"}, frozenset({"session"}))
    assert caught.value.detail == "Header session is configured as parameter-level header."


def test_produce_response() -> None:
    assert produce_response("OK") == {"status": "OK", "reason": None}
    assert produce_response("BAD_REQUEST", "Either key or value must be set.") == {
        "status": "BAD_REQUEST",
        "reason": "Either key or value must be set.",
    }
    assert json.dumps(produce_response("PRODUCER_ERROR", "boom")) == (
        '{"status": "PRODUCER_ERROR", "reason": "boom"}'
    )


# --- push frames and offsets -----------------------------------------------------------------


def consumed(value: Any, key: Any = None, headers: dict[str, str] | None = None) -> ConsumedRecord:
    return ConsumedRecord(Record(value, key=key, headers=headers or {}), "topic", 0, 7)


def test_push_message_keeps_json_as_json() -> None:
    message = push_message(consumed({"answer": 42}, key="k", headers={"session": "s1"}), "tok")
    assert message == {
        "record": {"key": "k", "value": {"answer": 42}, "headers": {"session": "s1"}},
        "offset": "tok",
    }
    assert json.loads(json.dumps(message)) == message


def test_push_message_text_null_and_bytes() -> None:
    assert push_message(consumed("hi"), "t")["record"] == {
        "key": None,
        "value": "hi",
        "headers": {},
    }
    raw = push_message(consumed(b"\x00\xff", key=bytearray(b"\x01")), "t")["record"]
    assert raw["value"] == base64.b64encode(b"\x00\xff").decode()
    assert raw["key"] == "AQ=="
    assert push_message(consumed(None, key=3), "t")["record"]["value"] is None


def test_offset_tokens_round_trip() -> None:
    for offsets in ({}, {0: 0}, {0: 12, 1: 0, 10: 123456789}):
        token = encode_offset(offsets)
        assert "=" not in token
        assert decode_offset(token) == offsets


def test_offset_token_is_langstream_shaped() -> None:
    token = encode_offset({1: 5, 0: 3})
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert json.loads(raw) == {"offsets": {"0": "3", "1": "5"}}


def test_langstream_tokens_are_accepted() -> None:
    # Standard base64 with padding, as LangStream's gateway writes it.
    token = base64.b64encode(b'{"offsets":{"0":"17","2":"4"}}').decode()
    assert decode_offset(token) == {0: 17, 2: 4}
    assert decode_offset(base64.b64encode(b'{"offsets":{"0":9}}').decode()) == {0: 9}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "%%%",
        b64(b"not json"),
        b64(b"[]"),
        b64(b'{"other": {}}'),
        b64(b'{"offsets": []}'),
        b64(b'{"offsets": {"x": "1"}}'),
        b64(b'{"offsets": {"0": "x"}}'),
        b64(b'{"offsets": {"0": "-1"}}'),
        b64(b'{"offsets": {"-1": "1"}}'),
        b64(b'{"offsets": {"0": true}}'),
        b64(b'{"offsets": {"0": null}}'),
        b64(b'{"offsets": {"0": 1.5}}'),
        b64(b"\xff\xfe"),
    ],
)
def test_garbage_token(token: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_offset(token)
    assert caught.value.detail == f"invalid position {token}"


# --- HTTP bodies -----------------------------------------------------------------------------


def test_media_type() -> None:
    assert media_type(None) is None
    assert media_type("") is None
    assert media_type(" ; charset=utf-8") is None
    assert media_type("Application/JSON; charset=UTF-8") == "application/json"


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "TEXT/PLAIN;charset=UTF-8"])
def test_text_body_is_the_value(content_type: str | None) -> None:
    assert parse_http_body(content_type, "héllo".encode()) == [ProduceRequest(value="héllo")]


def test_empty_text_body_is_an_empty_value() -> None:
    assert parse_http_body("text/plain", b"") == [ProduceRequest(value="")]


def test_text_body_must_be_utf8() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_http_body(None, b"\xff")
    assert caught.value.detail.startswith("the body is not UTF-8 text: ")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_body(content_type: str) -> None:
    body = b'{"key": "k", "value": {"q": 1}, "headers": {"h": "v"}}'
    assert parse_http_body(content_type, body) == [ProduceRequest("k", {"q": 1}, {"h": "v"})]


def test_json_body_errors_are_langstreams() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_http_body("application/json", b'{"key": null}')
    assert caught.value.detail == "Either key or value must be set."
    with pytest.raises(BadRequest) as caught:
        parse_http_body("application/json", b"nope")
    assert caught.value.detail == f"{JSON_ERROR}Expecting value: line 1 column 1 (char 0)"


def test_json_array_is_a_batch() -> None:
    body = b'[{"value": "a"}, {"key": "k", "value": 2}]'
    assert parse_http_body("application/json", body) == [
        ProduceRequest(value="a"),
        ProduceRequest("k", 2),
    ]
    assert parse_http_body("application/json", b"[]") == []


def test_bad_item_rejects_the_batch() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_http_body("application/json", b'[{"value": "a"}, {"value": null}]')
    assert caught.value.detail == "message [1]: Either key or value must be set."
    with pytest.raises(BadRequest) as caught:
        parse_http_body("application/json", b'[{"value": "a"}, 3]')
    assert caught.value.detail == f"message [1]: {JSON_ERROR}expected a JSON object, not a number"


def event(**attributes: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e1", "source": "/client", "type": "question", **attributes}


def ce(content_type: str, data: Any) -> list[ProduceRequest]:
    return parse_http_body(content_type, json.dumps(data).encode())


def test_structured_cloudevent() -> None:
    requests = ce(
        "application/cloudevents+json; charset=utf-8",
        event(partitionkey="k", datacontenttype="application/json", data={"q": "hi"}, ext="x"),
    )
    assert requests == [
        ProduceRequest(
            "k", {"q": "hi"}, event_id="e1", event_type="question", event_source="/client"
        )
    ]
    assert requests[0].headers == {}


def test_cloudevent_text_and_binary_data() -> None:
    text = ce("application/cloudevents+json", event(datacontenttype="text/plain", data="hi"))
    assert text[0].value == "hi"
    assert text[0].key is None
    binary = ce("application/cloudevents+json", event(data_base64="AAH/"))
    assert binary[0].value == b"\x00\x01\xff"


def test_cloudevent_key_without_data() -> None:
    assert ce("application/cloudevents+json", event(partitionkey="k"))[0].key == "k"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a CloudEvent is a JSON object, not an array"),
        (event(specversion="0.3"), "unsupported CloudEvent specversion '0.3' (expected '1.0')"),
        (
            {"id": "e", "source": "s", "type": "t"},
            "unsupported CloudEvent specversion None (expected '1.0')",
        ),
        (event(id=""), "the CloudEvent attribute id must be a non-empty string"),
        (event(source=3), "the CloudEvent attribute source must be a non-empty string"),
        (
            {"specversion": "1.0", "id": "e", "source": "s"},
            "the CloudEvent attribute type must be a non-empty string",
        ),
        (event(data="a", data_base64="AA=="), "a CloudEvent cannot have both data and data_base64"),
        (event(data_base64="***"), "the CloudEvent data_base64 is not base64 text"),
        (event(data_base64=12), "the CloudEvent data_base64 is not base64 text"),
        (event(partitionkey=1, data="a"), "the CloudEvent attribute partitionkey must be a string"),
        (event(), "Either key or value must be set."),
        (event(data=None), "Either key or value must be set."),
    ],
)
def test_cloudevent_errors(data: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        ce("application/cloudevents+json", data)
    assert caught.value.detail == message


def test_cloudevents_batch() -> None:
    requests = ce(
        "application/cloudevents-batch+json",
        [event(data=1), event(id="e2", type="other", data=2, partitionkey="k")],
    )
    assert requests == [
        ProduceRequest(None, 1, event_id="e1", event_type="question", event_source="/client"),
        ProduceRequest("k", 2, event_id="e2", event_type="other", event_source="/client"),
    ]


def test_cloudevents_batch_errors() -> None:
    with pytest.raises(BadRequest) as caught:
        ce("application/cloudevents-batch+json", event(data=1))
    assert caught.value.detail == f"{JSON_ERROR}a CloudEvents batch is a JSON array, not an object"
    with pytest.raises(BadRequest) as caught:
        ce("application/cloudevents-batch+json", [event(data=1), event(id="")])
    assert caught.value.detail == (
        "message [1]: the CloudEvent attribute id must be a non-empty string"
    )
    with pytest.raises(BadRequest) as caught:
        parse_http_body("application/cloudevents+json", b"{")
    assert caught.value.detail.startswith(JSON_ERROR)


@pytest.mark.parametrize(
    "content_type", ["application/xml", "Application/Octet-Stream; x=1", "text/html", "json"]
)
def test_unsupported_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_http_body(content_type, b"{}")
    assert caught.value.status == 415
    assert caught.value.detail == f"Unsupported content type: {content_type}"
