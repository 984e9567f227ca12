"""The fast paths of sluice.events (taken for the benchmarks) give what its reference paths give."""

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


def _binding(message: events.WireMessage) -> list[tuple[str, bytes]]:
    return [
        (n, v) for n, v in message.headers if n.lower().startswith("ce_") or n == "content-type"
    ]


@pytest.mark.parametrize(("value", "key"), list(itertools.product(VALUES, KEYS)))
def test_reading_attributes_equals_the_sdk_path(value: Any, key: Any) -> None:
    for time in TIMES:
        message = to_kafka(Record(value, key=key, headers=HEADERS[1]), source="/s", time=time)
        fast = events._plain_binding(_binding(message))
        assert fast is not None
        reference = events._sdk_attributes(_binding(message))
        assert fast == reference
        assert fast["time"].isoformat() == reference["time"].isoformat()


ODD_BINDINGS = [
    [("CE_ID", b"1"), ("ce_source", b"/s"), ("Ce_Type", b"t"), ("ce_specversion", b"1.0")],
    [("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"), ("ce_specversion", b"0.3")],
    [("ce_id", b""), ("ce_source", b"/s"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"2026-01-01T00:00:00"),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"20260101T000000Z"),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"yesterday"),
    ],
    [("ce_id", b"\xff"), ("ce_source", b"/s"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_my_ext", b"x"),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_data", b"x"),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_subject", b""),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("content-type", b""),
    ],
    [
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"2026-01-01T00:00:00.5+02:00"),
        ("ce_subject", b"sub"),
        ("ce_ext1", b"v"),
    ],
]


@pytest.mark.parametrize("binding", ODD_BINDINGS)
def test_odd_attributes_read_like_the_sdk(binding: list[tuple[str, bytes]]) -> None:
    message = events.WireMessage(None, b"x", tuple(binding))
    fast = events.from_kafka(message, topic="t", partition=0, offset=1)
    try:
        reference: Any = events._sdk_attributes(binding)
    except events._Poison as poison:
        reference = str(poison)
    if isinstance(reference, str):
        assert isinstance(fast, events.Undecodable)
        assert fast.reason == reference
    else:
        assert isinstance(fast, events.ConsumedRecord)
        assert fast.event_id == reference["id"]
        assert fast.event_source == reference["source"]
        assert fast.event_type == reference["type"]
        if "time" in dict(binding) or "ce_time" in dict(binding):
            assert fast.event_time == reference["time"]


def test_shared_push_frames_equal_a_frame_built_per_socket() -> None:
    import json

    from gateway.messages import encode_offset, push_frame, push_message

    records = [
        events.ConsumedRecord(Record({"n": n}, key=f"k{n}", headers={"h": "v"}), "t", n % 2, n)
        for n in range(600)
    ]
    positions = [{0: 5, 1: 7}, {1: 7, 0: 5}, {0: 6}, {}]
    for _ in range(2):  # the second round reads the cache (and what it evicted)
        for consumed in records:
            for position in positions:
                expected = json.dumps(push_message(consumed, encode_offset(position)))
                assert push_frame(consumed, position) == expected
    # An equal record that is another object never gets a frame built for the first one.
    twin = events.ConsumedRecord(Record({"n": 0}, key="k0", headers={"h": "other"}), "t", 0, 0)
    assert '"other"' in push_frame(twin, {0: 1})
