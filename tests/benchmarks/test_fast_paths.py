"""The fast paths taken for the benchmarks' sake give exactly what the reference paths give."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sluice import events
from sluice.events import UnencodableRecord, event_to_kafka, to_cloudevent, to_kafka
from sluice.record import Record

VALUES: list[Any] = [
    None,
    "hi",
    "h\u00e9 \u2603",
    b"\x00\xff",
    bytearray(b"ab"),
    {"q": 1, "x": [1.5, None, True], "\u00e9": "\u00fc"},
    [1, 2],
    3,
    2.5,
    True,
]
KEYS: list[Any] = [None, "k1", "", 42, {"b": 1, "a": 2}, b"\x01\x02", [1, "x"], 1.5, False]
HEADERS: list[dict[str, str]] = [
    {},
    {"h1": "v1", "ce_x": "dropped", "Content-Type": "dropped", "session": "s\u00e9"},
]
TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=2))),
]


@pytest.mark.parametrize(("value", "key"), list(itertools.product(VALUES, KEYS)))
def test_to_kafka_equals_the_sdk_path(value: Any, key: Any) -> None:
    for headers, time, type_ in itertools.product(HEADERS, TIMES, ["ai.sluice.record", "x.y"]):
        record = Record(value, key=key, headers=headers)
        fast = to_kafka(record, source="/t/a/gateways/g", type=type_, id="id-1", time=time)
        event = to_cloudevent(record, source="/t/a/gateways/g", type=type_, id="id-1", time=time)
        assert fast == event_to_kafka(event, record.headers)


@pytest.mark.parametrize(
    "attributes",
    [
        {"source": ""},
        {"source": "/s", "type": ""},
        {"source": "/s", "id": ""},
        {"source": "/s", "time": datetime(2020, 1, 1)},  # naive
    ],
)
def test_attributes_the_sdk_refuses_are_refused_alike(attributes: dict[str, Any]) -> None:
    with pytest.raises(UnencodableRecord) as fast:
        to_kafka(Record(1), **attributes)
    with pytest.raises(UnencodableRecord) as reference:
        event_to_kafka(to_cloudevent(Record(1), **attributes))
    assert str(fast.value) == str(reference.value)


def test_generated_ids_are_uuid4_text_and_unique() -> None:
    ids = [events._new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_generated_attributes_look_like_the_sdk_ones() -> None:
    message = to_kafka(Record({"a": 1}, key="k"), source="/s")
    names = [name for name, _ in message.headers]
    assert names == [
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_specversion",
        "ce_time",
        "content-type",
        "ce_partitionkey",
    ]
    time = dict(message.headers)["ce_time"].decode()
    assert time.endswith("Z")
    assert datetime.fromisoformat(time.replace("Z", "+00:00")).tzinfo is not None
