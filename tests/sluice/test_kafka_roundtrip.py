"""Records through a real broker: the Producer and Consumer adapters, and topic administration."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiokafka
import pytest

from sluice.application.model import SchemaSpec, SchemaType, TopicSpec
from sluice.errors import KafkaError
from sluice.events import Consumed, ConsumedRecord, Undecodable, WireMessage
from sluice.kafka import (
    Consumer,
    KafkaSettings,
    Partition,
    Producer,
    RebalanceListener,
)
from sluice.kafka.admin import delete_topics, describe_topic, ensure_topics, list_topics
from sluice.record import Record

SOURCE = "/default/test-app/gateways/produce"
kafka = pytest.mark.kafka

MakeTopic = Callable[..., Awaitable[TopicSpec]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap)


@pytest.fixture(scope="session")
async def producer(settings: KafkaSettings) -> AsyncIterator[Producer]:
    async with Producer(settings) as shared:
        yield shared


@pytest.fixture
async def make_topic(settings: KafkaSettings) -> AsyncIterator[MakeTopic]:
    made: list[str] = []

    async def make(
        *,
        partitions: int = 1,
        schema: SchemaType | None = None,
        key_schema: SchemaType | None = None,
        config: Mapping[str, str] | None = None,
    ) -> TopicSpec:
        spec = TopicSpec(
            unique("test"),
            creation_mode="create-if-not-exists",
            partitions=partitions,
            schema=SchemaSpec(schema) if schema else None,
            key_schema=SchemaSpec(key_schema) if key_schema else None,
            config=dict(config or {}),
        )
        assert await ensure_topics(settings, [spec]) == (spec.name,)
        made.append(spec.name)
        return spec

    yield make
    await delete_topics(settings, made)


async def read(consumer: Consumer, count: int, *, within: float = 30) -> list[Consumed]:
    """Exactly ``count`` items, then nothing more for a short while."""
    items: list[Consumed] = []
    async with asyncio.timeout(within):
        while len(items) < count:
            items += await consumer.poll(timeout_ms=500)
    assert len(items) == count, items
    assert await consumer.poll(timeout_ms=300) == []
    return items


def records(items: list[Consumed]) -> list[Record]:
    assert all(isinstance(item, ConsumedRecord) for item in items), items
    return [item.record for item in items if isinstance(item, ConsumedRecord)]


def group_consumer(settings: KafkaSettings, *topics: TopicSpec, **kwargs: Any) -> Consumer:
    return Consumer(settings, topics, group_id=unique("group"), **kwargs)


# --- records through the broker ---------------------------------------------------------------

SENT = [
    Record({"question": "why?", "n": [1, 2.5, None], "nested": {"ok": True}}),
    Record(42),
    Record(-0.5),
    Record([1, "two", {"three": 3}]),
    Record(True),
    Record("plain text ü €"),
    Record(""),
    Record(b"\x00\x01\xffbinary"),
    Record(None, key="tombstone-ish"),
    Record("v", key="user-7"),
    Record("v", key="42"),
    Record("v", key=42),
    Record("v", key={"tenant": "t", "id": [1, 2]}),
    Record("v", key=b"\x00raw-key"),
    Record(
        {"q": 1},
        headers={
            "langstream-client-session-id": "session-1",
            "langstream-service-request-id": "req-ü",
            "empty": "",
        },
    ),
]


@kafka
async def test_records_round_trip_through_the_broker(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    results = [await producer.send(topic.name, r, source=SOURCE) for r in SENT]
    assert [r.offset for r in results] == list(range(len(SENT)))
    assert all(r.topic == topic.name and r.partition == 0 for r in results)
    async with group_consumer(settings, topic) as consumer:
        items = await read(consumer, len(SENT))
    got = records(items)
    for sent, received in zip(SENT, got, strict=True):
        assert type(received.value) is type(sent.value)
        assert received.value == sent.value
        assert type(received.key) is type(sent.key)
        assert received.key == sent.key
        assert dict(received.headers) == dict(sent.headers)
        assert received.origin == topic.name
        assert received.timestamp is not None
    for item, result in zip(items, results, strict=True):
        assert isinstance(item, ConsumedRecord)
        assert item.event_id == result.event_id
        assert item.event_type == "ai.sluice.record"
        assert item.event_source == SOURCE
        assert (item.topic, item.partition, item.offset) == (topic.name, 0, result.offset)


@kafka
async def test_equal_keys_share_a_partition(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic(partitions=6)
    keys: list[Any] = [{"a": 1, "b": 2}, {"b": 2, "a": 1}] * 3
    partitions = {
        (await producer.send(topic.name, Record(1, key=k), source=SOURCE)).partition for k in keys
    }
    assert len(partitions) == 1
    spread = {
        (await producer.send(topic.name, Record(1, key=f"k{i}"), source=SOURCE)).partition
        for i in range(40)
    }
    assert len(spread) > 1


@kafka
async def test_given_event_attributes_travel(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    result = await producer.send(
        topic.name, Record("x"), source="/t/a/agents/step", type="com.example.reply", id="fixed-id"
    )
    assert result.event_id == "fixed-id"
    async with group_consumer(settings, topic) as consumer:
        [item] = await read(consumer, 1)
    assert isinstance(item, ConsumedRecord)
    assert (item.event_id, item.event_type, item.event_source) == (
        "fixed-id",
        "com.example.reply",
        "/t/a/agents/step",
    )


# --- plain producers and poison records -------------------------------------------------------


async def plain_send(
    settings: KafkaSettings, topic: str, messages: list[tuple[bytes | None, bytes, list[Any]]]
) -> None:
    """Write with a bare aiokafka producer: no CloudEvent headers."""
    plain = aiokafka.AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await plain.start()
    try:
        for key, value, headers in messages:
            await plain.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await plain.stop()


@kafka
@pytest.mark.parametrize(
    ("schema", "key_schema", "expected_value", "expected_key"),
    [
        ("string", "string", '{"a": [1, 2]}', "7"),
        ("json", "json", {"a": [1, 2]}, 7),
        ("bytes", "bytes", b'{"a": [1, 2]}', b"7"),
        (None, None, '{"a": [1, 2]}', "7"),
    ],
)
async def test_plain_records_decode_per_topic_schema(
    settings: KafkaSettings,
    make_topic: MakeTopic,
    schema: SchemaType | None,
    key_schema: SchemaType | None,
    expected_value: Any,
    expected_key: Any,
) -> None:
    topic = await make_topic(schema=schema, key_schema=key_schema)
    await plain_send(settings, topic.name, [(b"7", b'{"a": [1, 2]}', [("trace-id", b"t-1")])])
    async with group_consumer(settings, topic) as consumer:
        [item] = await read(consumer, 1)
    assert isinstance(item, ConsumedRecord)
    assert item.event_id is None
    assert type(item.record.value) is type(expected_value)
    assert item.record.value == expected_value
    assert type(item.record.key) is type(expected_key)
    assert item.record.key == expected_key
    assert dict(item.record.headers) == {"trace-id": "t-1"}


@kafka
async def test_plain_binary_record_on_a_topic_without_schema_stays_bytes(
    settings: KafkaSettings, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    await plain_send(settings, topic.name, [(None, b"\x89PNG\xff", [])])
    async with group_consumer(settings, topic) as consumer:
        [item] = await read(consumer, 1)
    assert records([item])[0].value == b"\x89PNG\xff"


@kafka
async def test_poison_records_are_undecodable_and_the_consumer_goes_on(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic(schema="string")
    ce = [
        ("ce_id", b"bad-1"),
        ("ce_source", b"/x"),
        ("ce_type", b"t"),
        ("ce_specversion", b"1.0"),
        ("content-type", b"application/json"),
    ]
    await producer.send_message(topic.name, WireMessage(None, b'{"broken": ', tuple(ce)))
    await producer.send(topic.name, Record("good 1"), source=SOURCE)
    await plain_send(settings, topic.name, [(None, b"\xc3\x28 not utf-8", [("h", b"1")])])
    await producer.send_message(topic.name, WireMessage(None, b"x", (("ce_specversion", b"1.0"),)))
    await producer.send(topic.name, Record("good 2"), source=SOURCE)
    async with group_consumer(settings, topic) as consumer:
        items = await read(consumer, 5)
        # Commit past the poison too: dead-lettered or skipped, it is done.
        await consumer.commit({(topic.name, 0): items[-1].next_offset})
        assert await consumer.committed(topic.name, 0) == 5
    bad_json, good_1, bad_utf8, no_attributes, good_2 = items
    assert isinstance(bad_json, Undecodable)
    assert "is not valid JSON" in bad_json.reason
    assert bad_json.value == b'{"broken": '
    assert bad_json.message.header("ce_id") == b"bad-1"
    assert (bad_json.topic, bad_json.partition, bad_json.offset) == (topic.name, 0, 0)
    assert isinstance(bad_utf8, Undecodable)
    assert "not UTF-8 text (schema string)" in bad_utf8.reason
    assert bad_utf8.headers == (("h", b"1"),)
    assert isinstance(no_attributes, Undecodable)
    assert "required attribute(s) id, source, type" in no_attributes.reason
    assert [r.value for r in records([good_1, good_2])] == ["good 1", "good 2"]


@kafka
async def test_an_undecodable_message_can_be_dead_lettered_unchanged(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    source, dead = await make_topic(schema="json"), await make_topic()
    await plain_send(settings, source.name, [(b"k", b"{nope", [("session", b"s")])])
    async with group_consumer(settings, source) as consumer:
        [bad] = await read(consumer, 1)
    assert isinstance(bad, Undecodable)
    await producer.send_message(dead.name, bad.message)
    async with group_consumer(settings, dead) as consumer:
        [copy] = await read(consumer, 1)
    assert isinstance(copy, ConsumedRecord)  # no schema on the dead-letter topic: text
    assert (copy.record.key, copy.record.value) == ("k", "{nope")
    assert dict(copy.record.headers) == {"session": "s"}


# --- offsets ----------------------------------------------------------------------------------


@kafka
async def test_commit_then_a_new_member_of_the_group_resumes_after_it(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    for i in range(6):
        await producer.send(topic.name, Record(i), source=SOURCE)
    group = unique("group")
    async with Consumer(settings, [topic], group_id=group) as first:
        assert await first.committed(topic.name, 0) is None
        items = await first.poll(timeout_ms=10_000, max_records=3)
        assert [r.value for r in records(items)] == [0, 1, 2]
        await first.commit({(items[-1].topic, items[-1].partition): items[-1].next_offset})
        # Read but not committed: must come again.
        more = await read(first, 3)
        assert [r.value for r in records(more)] == [3, 4, 5]
    async with Consumer(settings, [topic], group_id=group) as second:
        assert await second.committed(topic.name, 0) == 3
        assert [r.value for r in records(await read(second, 3))] == [3, 4, 5]


@kafka
async def test_iterating_a_consumer(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    for value in ("a", "b"):
        await producer.send(topic.name, Record(value), source=SOURCE)
    seen: list[Any] = []
    async with group_consumer(settings, topic) as consumer:
        async with asyncio.timeout(30):
            async for item in consumer:
                seen.append(records([item])[0].value)
                if len(seen) == 2:
                    break
    assert seen == ["a", "b"]


class Recorder(RebalanceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[Partition]]] = []

    async def on_assigned(self, partitions: frozenset[Partition]) -> None:
        self.events.append(("assigned", partitions))

    async def on_revoked(self, partitions: frozenset[Partition]) -> None:
        self.events.append(("revoked", partitions))


@kafka
async def test_rebalance_listener_sees_assignments_and_revocations(
    settings: KafkaSettings, make_topic: MakeTopic
) -> None:
    topic = await make_topic(partitions=2)
    group = unique("group")
    both = frozenset({(topic.name, 0), (topic.name, 1)})
    first_hooks, second_hooks = Recorder(), Recorder()
    async with Consumer(settings, [topic], group_id=group, listener=first_hooks) as first:
        assert first.assignment() == both
        assert ("assigned", both) in first_hooks.events
        async with Consumer(settings, [topic], group_id=group, listener=second_hooks) as second:
            async with asyncio.timeout(30):
                while len(first.assignment()) != 1:
                    await first.poll(timeout_ms=200)
            assert first.assignment() | second.assignment() == both
            assert ("revoked", both) in first_hooks.events
            assert ("assigned", second.assignment()) in second_hooks.events


@kafka
async def test_group_less_consumer_starts_at_the_end_or_the_beginning(
    settings: KafkaSettings, producer: Producer, make_topic: MakeTopic
) -> None:
    topic = await make_topic(partitions=2)
    for i in range(4):
        await producer.send(topic.name, Record(i, key=f"k{i}"), source=SOURCE)
    async with (
        Consumer(settings, [topic]) as tail,
        Consumer(settings, [topic], start_at="beginning") as head,
    ):
        assert tail.assignment() == {(topic.name, 0), (topic.name, 1)}
        # Produced before the first poll: the start position was fixed by start().
        late = await producer.send(topic.name, Record("late", key="k0"), source=SOURCE)
        assert [r.value for r in records(await read(tail, 1))] == ["late"]
        assert sorted(str(r.value) for r in records(await read(head, 5))) == [
            "0",
            "1",
            "2",
            "3",
            "late",
        ]
        tail.seek(topic.name, late.partition, late.offset)
        assert [r.value for r in records(await read(tail, 1))] == ["late"]
        with pytest.raises(KafkaError, match="without group_id cannot commit"):
            await tail.commit({(topic.name, 0): 1})


def test_consumer_arguments_are_checked() -> None:
    settings = KafkaSettings("127.0.0.1:1")
    topic = TopicSpec("t")
    with pytest.raises(ValueError, match="needs at least one topic"):
        Consumer(settings, [])
    with pytest.raises(ValueError, match="start_at applies without group_id"):
        Consumer(settings, [topic], group_id="g", start_at="end")
    with pytest.raises(ValueError, match="needs a group_id"):
        Consumer(settings, [topic], listener=RebalanceListener())


# --- producer errors --------------------------------------------------------------------------


@kafka
async def test_oversized_record_is_a_non_retriable_kafka_error(
    settings: KafkaSettings, make_topic: MakeTopic
) -> None:
    topic = await make_topic()
    async with Producer(settings, max_request_size=10_000) as small:
        assert small.max_request_size == 10_000
        with pytest.raises(KafkaError, match=f"producing to topic '{topic.name}' failed") as info:
            await small.send(topic.name, Record("x" * 20_000), source=SOURCE)
        assert info.value.retriable is False
        assert (await small.send(topic.name, Record("fits"), source=SOURCE)).offset == 0


async def test_unreachable_broker_is_a_retriable_kafka_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    producer = Producer(KafkaSettings(f"127.0.0.1:{port}"), request_timeout_ms=2000)
    with pytest.raises(KafkaError, match="cannot start a Kafka producer") as info:
        await producer.start()
    assert info.value.retriable is True
    with pytest.raises(KafkaError, match="not started"):
        await producer.send("t", Record(1), source=SOURCE)


# --- administration ---------------------------------------------------------------------------


@kafka
async def test_ensure_topics_creates_once_with_partitions_and_config(
    settings: KafkaSettings,
) -> None:
    created = TopicSpec(
        unique("admin"),
        creation_mode="create-if-not-exists",
        partitions=3,
        config={"retention.ms": "123456", "cleanup.policy": "compact"},
    )
    default = TopicSpec(unique("admin"), creation_mode="create-if-not-exists")
    untouched = TopicSpec(unique("admin"), creation_mode="none")
    try:
        made = await ensure_topics(settings, [created, default, untouched, created])
        assert sorted(made) == sorted([created.name, default.name])
        assert await ensure_topics(settings, [created, default, untouched]) == ()
        described = await describe_topic(settings, created.name)
        assert described.partitions == 3
        assert described.config["retention.ms"] == "123456"
        assert described.config["cleanup.policy"] == "compact"
        assert (await describe_topic(settings, default.name)).partitions == 1
        names = await list_topics(settings)
        assert {created.name, default.name} <= names
        assert untouched.name not in names
        assert not any(name.startswith("__") for name in names)
    finally:
        deleted = await delete_topics(settings, [created.name, default.name, untouched.name])
    assert sorted(deleted) == sorted([created.name, default.name])
    assert not {created.name, default.name} & await list_topics(settings)
    with pytest.raises(KafkaError, match="does not exist"):
        await describe_topic(settings, created.name)


@kafka
@pytest.mark.parametrize(
    ("options", "config", "message"),
    [
        ({}, {"retention.ms": "soon"}, "InvalidConfigurationError"),
        ({"replication-factor": 3}, {}, "InvalidReplicationFactorError"),
        ({"replication-factor": "zero"}, {}, "replication-factor must be a positive integer"),
    ],
)
async def test_ensure_topics_names_the_topic_it_cannot_create(
    settings: KafkaSettings, options: dict[str, Any], config: dict[str, str], message: str
) -> None:
    topic = TopicSpec(
        unique("bad"), creation_mode="create-if-not-exists", options=options, config=config
    )
    with pytest.raises(KafkaError, match=message) as info:
        await ensure_topics(settings, [topic])
    assert repr(topic.name) in str(info.value)
    assert topic.name not in await list_topics(settings)


# --- settings ---------------------------------------------------------------------------------


def test_client_options_map_to_aiokafka() -> None:
    settings = KafkaSettings.from_properties(
        {
            "bootstrap.servers": "b1:9092,b2:9092",
            "security.protocol": "sasl_plaintext",
            "sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                'username="alice" password="p\\"w;d";'
            ),
            "linger.ms": "5",
            "session.timeout.ms": 20000,
            "value.serializer": "org.apache.kafka.common.serialization.StringSerializer",
        }
    )
    assert settings.bootstrap_servers == "b1:9092,b2:9092"
    producer = settings.client_kwargs("producer")
    assert producer["security_protocol"] == "SASL_PLAINTEXT"
    assert producer["sasl_mechanism"] == "PLAIN"
    assert (producer["sasl_plain_username"], producer["sasl_plain_password"]) == ("alice", 'p"w;d')
    assert producer["linger_ms"] == 5
    assert "session_timeout_ms" not in producer
    consumer = settings.client_kwargs("consumer")
    assert consumer["session_timeout_ms"] == 20000
    assert "linger_ms" not in consumer
    scram = KafkaSettings(
        "b:1",
        {
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
            "required username=bob password=secret;",
        },
    )
    assert scram.client_kwargs("admin")["sasl_mechanism"] == "SCRAM-SHA-512"
    assert scram.client_kwargs("admin")["sasl_plain_username"] == "bob"


def test_tls_options_make_an_ssl_context() -> None:
    settings = KafkaSettings(
        "b:1", {"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": ""}
    )
    context = settings.client_kwargs("consumer")["ssl_context"]
    assert context.check_hostname is False
    missing = KafkaSettings(
        "b:1",
        {
            "security.protocol": "SSL",
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": "does-not-exist.pem",
        },
    )
    with pytest.raises(
        KafkaError, match=r"'ssl\.truststore\.location': cannot read does-not-exist"
    ):
        missing.client_kwargs("producer")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"acks": "1"}, "'acks': not supported: .*acks=all"),
        ({"enable.idempotence": "false"}, "'enable.idempotence': not supported"),
        ({"enable.auto.commit": "true"}, "'enable.auto.commit'"),
        ({"bootstrap.servers": "x:1"}, "KafkaSettings.bootstrap_servers"),
        ({"schema.registry.url": "http://r"}, "'schema.registry.url': not supported"),
        ({"security.protocol": "TLS"}, "'security.protocol': expected one of PLAINTEXT"),
        ({"linger.ms": "soon"}, "'linger.ms': expected an integer"),
        ({"sasl.mechanism": "OAUTHBEARER"}, "'sasl.oauthbearer.token.endpoint.url'"),
        ({"sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required;"}, "PLAIN"),
        ({"sasl.jaas.config": "garbage"}, "'sasl.jaas.config'"),
        ({"ssl.truststore.type": "JCEKS"}, "expected one of PEM, PKCS12, JKS"),
        ({"ssl.endpoint.identification.algorithm": "http"}, "expected https or an empty"),
    ],
)
def test_unsupported_client_options_fail_early(options: dict[str, Any], message: str) -> None:
    with pytest.raises(KafkaError, match=message):
        KafkaSettings("b:1", options)


def test_settings_need_bootstrap_servers() -> None:
    with pytest.raises(KafkaError, match="bootstrap servers are empty"):
        KafkaSettings(" ")
    with pytest.raises(KafkaError, match=r"without bootstrap\.servers"):
        KafkaSettings.from_properties({"security.protocol": "SSL"})
