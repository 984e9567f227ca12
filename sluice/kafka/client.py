"""A typed adapter over aiokafka: connection settings, the producer and the consumer.

Every message goes through :mod:`sluice.events`: the producer writes records as CloudEvents in
binary content mode, the consumer yields :class:`~sluice.events.ConsumedRecord` or, for a
message it cannot decode, :class:`~sluice.events.Undecodable` (never an exception). aiokafka
errors become :class:`~sluice.errors.KafkaError` with ``retriable`` set from aiokafka's own flag
(timeouts count as retriable too).

The reliability settings are fixed (spec/reliability.md): the producer is idempotent with
``acks=all`` and a bounded request timeout; consumers never auto-commit and commit only the
offsets they are given.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeAlias

import aiokafka
import aiokafka.errors
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition

from sluice.errors import KafkaError
from sluice.events import RECORD_TYPE, Consumed, WireMessage, from_kafka, to_kafka
from sluice.record import Record

if TYPE_CHECKING:
    from sluice.application.model import TopicSpec

__all__ = [
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "Consumer",
    "KafkaSettings",
    "Partition",
    "Producer",
    "RebalanceListener",
    "Role",
    "SendResult",
]

DEFAULT_MAX_REQUEST_SIZE: Final = 1_048_576
DEFAULT_REQUEST_TIMEOUT_MS: Final = 30_000

Role: TypeAlias = Literal["producer", "consumer", "admin"]
Partition: TypeAlias = tuple[str, int]
"""A topic partition as ``(topic, partition)``."""

# --- settings --------------------------------------------------------------------------------

_ALL: Final[frozenset[Role]] = frozenset({"producer", "consumer", "admin"})
_PRODUCER: Final[frozenset[Role]] = frozenset({"producer"})
_CONSUMER: Final[frozenset[Role]] = frozenset({"consumer"})


def _text(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _choice(*allowed: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value)
        for choice in allowed:
            if text.upper() == choice.upper():
                return choice
        raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")

    return convert


def _compression(value: Any) -> str | None:
    chosen = _choice("none", "gzip", "snappy", "lz4", "zstd")(value)
    return None if chosen == "none" else chosen


@dataclass(frozen=True)
class _Option:
    kwarg: str
    convert: Callable[[Any], Any]
    roles: frozenset[Role] = _ALL


# Kafka client properties (Java names) that map onto aiokafka keyword arguments.
_OPTIONS: Final[Mapping[str, _Option]] = MappingProxyType(
    {
        "client.id": _Option("client_id", _text),
        "security.protocol": _Option(
            "security_protocol", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        ),
        "sasl.mechanism": _Option(
            "sasl_mechanism", _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI")
        ),
        "sasl.kerberos.service.name": _Option("sasl_kerberos_service_name", _text),
        "request.timeout.ms": _Option("request_timeout_ms", _int),
        "retry.backoff.ms": _Option("retry_backoff_ms", _int),
        "metadata.max.age.ms": _Option("metadata_max_age_ms", _int),
        "connections.max.idle.ms": _Option("connections_max_idle_ms", _int),
        "compression.type": _Option("compression_type", _compression, _PRODUCER),
        "linger.ms": _Option("linger_ms", _int, _PRODUCER),
        "batch.size": _Option("max_batch_size", _int, _PRODUCER),
        "max.request.size": _Option("max_request_size", _int, _PRODUCER),
        "fetch.max.wait.ms": _Option("fetch_max_wait_ms", _int, _CONSUMER),
        "fetch.min.bytes": _Option("fetch_min_bytes", _int, _CONSUMER),
        "fetch.max.bytes": _Option("fetch_max_bytes", _int, _CONSUMER),
        "max.partition.fetch.bytes": _Option("max_partition_fetch_bytes", _int, _CONSUMER),
        "session.timeout.ms": _Option("session_timeout_ms", _int, _CONSUMER),
        "heartbeat.interval.ms": _Option("heartbeat_interval_ms", _int, _CONSUMER),
        "max.poll.interval.ms": _Option("max_poll_interval_ms", _int, _CONSUMER),
        "max.poll.records": _Option("max_poll_records", _int, _CONSUMER),
        "isolation.level": _Option(
            "isolation_level", _choice("read_uncommitted", "read_committed"), _CONSUMER
        ),
        "client.rack": _Option("client_rack", _text, _CONSUMER),
    }
)
# Read into an SSL context when a client is made.
_SSL_OPTIONS: Final = frozenset(
    {
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.certificates",
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
    }
)
# Sluice encodes records itself (sluice.events), so serializer settings do not apply.
_IGNORED: Final = frozenset(
    {"key.serializer", "value.serializer", "key.deserializer", "value.deserializer"}
)
_RESERVED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bootstrap.servers": "give it as KafkaSettings.bootstrap_servers",
        "enable.idempotence": "Sluice's producer is always idempotent",
        "acks": "Sluice's producer always waits for all in-sync replicas (acks=all)",
        "enable.auto.commit": "Sluice commits offsets only after the work is done",
        "auto.offset.reset": "Sluice chooses the start position per consumer",
        "group.id": "Sluice names consumer groups itself",
        "transactional.id": "Sluice does not use Kafka transactions",
    }
)
_JAAS = re.compile(r"^\s*([\w.$]+)\s+(?:required|requisite|sufficient|optional)\s*(.*?);?\s*$")
_JAAS_OPTION = re.compile(r"""(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))""")


def _parse_jaas(value: Any) -> dict[str, str]:
    """``sasl.jaas.config`` of the PLAIN or SCRAM login module -> username and password."""
    match = _JAAS.match(_text(value))
    if not match:
        raise ValueError('expected \'<LoginModule> required username="..." password="...";\'')
    module, rest = match.groups()
    if not module.endswith(("PlainLoginModule", "ScramLoginModule")):
        raise ValueError(f"only the PLAIN and SCRAM login modules are supported, not {module}")
    options = {
        m.group(1): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        for m in _JAAS_OPTION.finditer(rest)
    }
    if "username" not in options or "password" not in options:
        raise ValueError("the login module needs username and password")
    kwargs = {
        "sasl_plain_username": options["username"],
        "sasl_plain_password": options["password"],
    }
    if module.endswith("PlainLoginModule"):
        kwargs["sasl_mechanism"] = "PLAIN"
    return kwargs


def _parse_options(options: Mapping[str, Any]) -> dict[Role, dict[str, Any]]:
    """aiokafka keyword arguments per client role, without the SSL context."""
    kwargs: dict[Role, dict[str, Any]] = {role: {} for role in _ALL}
    for name, value in options.items():
        try:
            if name in _OPTIONS:
                option = _OPTIONS[name]
                for role in option.roles:
                    kwargs[role][option.kwarg] = option.convert(value)
            elif name == "sasl.jaas.config":
                jaas = _parse_jaas(value)
                for role in _ALL:
                    # An explicit sasl.mechanism wins over the one the login module implies.
                    kwargs[role] = {**jaas, **kwargs[role]}
            elif name in _SSL_OPTIONS:
                _text(value)
            elif name not in _IGNORED:
                reason = _RESERVED.get(name, "it has no aiokafka equivalent in Sluice")
                raise ValueError(f"not supported: {reason}")
        except ValueError as error:
            raise KafkaError(f"Kafka client option {name!r}: {error}") from None
    _check_ssl(options)
    return kwargs


def _check_ssl(options: Mapping[str, Any]) -> None:
    for kind in ("truststore", "keystore"):
        location = f"ssl.{kind}.location"
        if location in options and str(options.get(f"ssl.{kind}.type", "")).upper() != "PEM":
            raise KafkaError(
                f"Kafka client option {location!r}: only PEM files are supported; "
                f"set ssl.{kind}.type to PEM"
            )
    algorithm = str(options.get("ssl.endpoint.identification.algorithm", "https")).lower()
    if algorithm not in ("https", ""):
        raise KafkaError(
            "Kafka client option 'ssl.endpoint.identification.algorithm': "
            f"expected https or an empty string, got {algorithm!r}"
        )


def _ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=options.get("ssl.truststore.location"),
            cadata=options.get("ssl.truststore.certificates"),
            certfile=options.get("ssl.keystore.location"),
            password=options.get("ssl.key.password"),
        )
    except (OSError, ssl.SSLError) as error:
        raise KafkaError(f"cannot load the Kafka TLS files: {error}") from error
    if str(options.get("ssl.endpoint.identification.algorithm", "https")) == "":
        context.check_hostname = False
    return context


@dataclass(frozen=True)
class KafkaSettings:
    """Where Kafka is and how to connect to it.

    ``client_options`` are Kafka client properties under their Java names, as in LangStream's
    ``streamingCluster.configuration.admin``: ``security.protocol``, ``sasl.mechanism``,
    ``sasl.jaas.config`` (PLAIN or SCRAM login module), PEM ``ssl.truststore.*`` /
    ``ssl.keystore.*``, ``ssl.key.password``, ``ssl.endpoint.identification.algorithm``,
    ``client.id``, timeouts, and producer / consumer tuning (``linger.ms``,
    ``compression.type``, ``max.partition.fetch.bytes``, ``session.timeout.ms``...). Serializer
    settings are ignored; anything else, and settings Sluice fixes itself (``acks``,
    ``enable.idempotence``, ``enable.auto.commit``...), raise :class:`~sluice.errors.KafkaError`
    naming the option when the settings are made.
    """

    bootstrap_servers: str
    client_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise KafkaError("Kafka bootstrap servers are empty")
        object.__setattr__(self, "client_options", MappingProxyType(dict(self.client_options)))
        _parse_options(self.client_options)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> KafkaSettings:
        """Settings from Kafka client properties that include ``bootstrap.servers``."""
        if "bootstrap.servers" not in properties:
            raise KafkaError("Kafka client properties without bootstrap.servers")
        options = {k: v for k, v in properties.items() if k != "bootstrap.servers"}
        return cls(_text(properties["bootstrap.servers"]), options)

    def client_kwargs(self, role: Role) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client of ``role`` (bootstrap servers included)."""
        kwargs = _parse_options(self.client_options)[role]
        kwargs["bootstrap_servers"] = self.bootstrap_servers
        protocol = kwargs.get("security_protocol", "PLAINTEXT")
        if protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = _ssl_context(self.client_options)
        return kwargs


def _kafka_error(error: Exception, what: str) -> KafkaError:
    retriable = bool(getattr(error, "retriable", False)) or isinstance(
        error, aiokafka.errors.KafkaTimeoutError
    )
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return KafkaError(f"{what}: {detail}", retriable=retriable)


# --- producer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """Where the broker stored a message; ``timestamp`` in ms, ``event_id`` its ``ce_id``."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    event_id: str | None


class Producer:
    """The process's Kafka producer: share one per process (aiokafka batches across callers).

    Idempotent with ``acks=all``; :meth:`send` returns only once the broker acknowledged the
    write, so a caller may then answer its client or commit its input.

    ``max_request_size`` and ``request_timeout_ms`` default to the client options
    ``max.request.size`` / ``request.timeout.ms`` when set there, else to 1 MiB and 30 s.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        max_request_size: int | None = None,
        request_timeout_ms: int | None = None,
        client_id: str | None = None,
    ) -> None:
        kwargs = settings.client_kwargs("producer")
        kwargs.setdefault("client_id", "sluice")
        kwargs.setdefault("max_request_size", DEFAULT_MAX_REQUEST_SIZE)
        kwargs.setdefault("request_timeout_ms", DEFAULT_REQUEST_TIMEOUT_MS)
        overrides = {
            "max_request_size": max_request_size,
            "request_timeout_ms": request_timeout_ms,
            "client_id": client_id,
        }
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        kwargs.update(enable_idempotence=True, acks="all")
        self._kwargs = kwargs
        self._producer: Any = None

    @property
    def max_request_size(self) -> int:
        size: int = self._kwargs["max_request_size"]
        return size

    async def start(self) -> None:
        """Connect to the cluster."""
        if self._producer is not None:
            raise KafkaError("the producer is already started")
        producer = aiokafka.AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except aiokafka.errors.KafkaError as error:
            await producer.stop()
            servers = self._kwargs["bootstrap_servers"]
            raise _kafka_error(error, f"cannot start a Kafka producer for {servers}") from error
        self._producer = producer

    async def stop(self) -> None:
        """Send what is pending and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(
        self,
        topic: str,
        record: Record,
        *,
        source: str,
        type: str = RECORD_TYPE,
        id: str | None = None,
        time: datetime | None = None,
        partition: int | None = None,
    ) -> SendResult:
        """Write ``record`` to ``topic`` as a CloudEvent and wait for the broker's ack.

        ``source``, ``type``, ``id`` and ``time`` are the event's attributes
        (:func:`sluice.events.to_cloudevent`). Raises
        :class:`~sluice.events.UnencodableRecord` for a record that cannot be encoded and
        :class:`~sluice.errors.KafkaError` when Kafka did not take it.
        """
        message = to_kafka(record, source=source, type=type, id=id, time=time)
        return await self.send_message(topic, message, partition=partition)

    async def send_message(
        self, topic: str, message: WireMessage, *, partition: int | None = None
    ) -> SendResult:
        """Write an encoded message (a raw dead letter, say) and wait for the broker's ack."""
        if self._producer is None:
            raise KafkaError("the producer is not started")
        try:
            future = await self._producer.send(
                topic,
                value=message.value,
                key=message.key,
                partition=partition,
                timestamp_ms=message.timestamp,
                headers=list(message.headers),
            )
            metadata = await future
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"producing to topic {topic!r} failed") from error
        event_id = message.header("ce_id")
        timestamp = metadata.timestamp if metadata.timestamp not in (None, -1) else None
        return SendResult(
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
            timestamp=timestamp,
            event_id=event_id.decode("utf-8", "replace") if event_id is not None else None,
        )


# --- consumer --------------------------------------------------------------------------------


class RebalanceListener:
    """Hooks a group :class:`Consumer` calls when its partitions change; no-ops here.

    ``on_revoked`` runs before the partitions move to another member, once fetching stopped:
    commit the finished offsets of those partitions there. It is not called when the consumer
    stops, so commit before :meth:`Consumer.stop` too. Do not wait in a hook for a lock held
    around :meth:`Consumer.poll`: the rebalance waits for the hook.
    """

    async def on_revoked(self, partitions: frozenset[Partition]) -> None:
        """The consumer is about to lose ``partitions``."""

    async def on_assigned(self, partitions: frozenset[Partition]) -> None:
        """The consumer now reads ``partitions`` (from their committed offsets)."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._listener.on_revoked(frozenset((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        await self._listener.on_assigned(frozenset((tp.topic, tp.partition) for tp in assigned))


class Consumer:
    """Reads topics and yields decoded records, committing only what it is told to.

    Two modes:

    - with ``group_id``: a member of a consumer group (partitions shared among members, offsets
      committed with :meth:`commit`, reading from the committed offset, else the earliest);
      ``listener`` is told about rebalances;
    - without: all partitions of the topics, no group, no commits, starting at the end
      (``start_at="end"``, the default) or the beginning; :meth:`seek` moves to any offset. The
      gateway's shared consumers work this way.

    ``topics`` are the topics' specs; their schema types decide how plain records are decoded
    (``TopicSpec(name)`` for a topic without schema).

    >>> async def read(settings: KafkaSettings, topic: TopicSpec) -> None:  # doctest: +SKIP
    ...     async with Consumer(settings, [topic], group_id="g") as consumer:
    ...         for item in await consumer.poll(timeout_ms=1000):
    ...             ...  # handle item, a ConsumedRecord or an Undecodable
    ...             await consumer.commit({(item.topic, item.partition): item.next_offset})
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Iterable[TopicSpec],
        *,
        group_id: str | None = None,
        listener: RebalanceListener | None = None,
        start_at: Literal["beginning", "end"] | None = None,
        max_partition_fetch_bytes: int | None = None,
        client_id: str | None = None,
    ) -> None:
        self._topics = {topic.name: topic for topic in topics}
        if not self._topics:
            raise ValueError("a consumer needs at least one topic")
        if group_id is not None and start_at is not None:
            raise ValueError(
                "start_at applies without group_id: a group resumes from its committed offsets"
            )
        if group_id is None and listener is not None:
            raise ValueError("a rebalance listener needs a group_id")
        kwargs = settings.client_kwargs("consumer")
        kwargs.setdefault("client_id", "sluice")
        if max_partition_fetch_bytes is not None:
            kwargs["max_partition_fetch_bytes"] = max_partition_fetch_bytes
        if client_id is not None:
            kwargs["client_id"] = client_id
        self._start_at = start_at or "end"
        reset = "earliest" if group_id is not None or self._start_at == "beginning" else "latest"
        kwargs.update(group_id=group_id, enable_auto_commit=False, auto_offset_reset=reset)
        self._kwargs = kwargs
        self._group_id = group_id
        self._listener = listener
        self._consumer: Any = None

    async def start(self) -> None:
        """Connect; a group member returns once it has its first assignment, a group-less
        consumer once every partition is at its start position."""
        if self._consumer is not None:
            raise KafkaError("the consumer is already started")
        consumer = aiokafka.AIOKafkaConsumer(**self._kwargs)
        listener = _Listener(self._listener) if self._listener is not None else None
        consumer.subscribe(list(self._topics), listener=listener)
        try:
            await consumer.start()
            if self._group_id is None:
                if self._start_at == "beginning":
                    await consumer.seek_to_beginning()
                else:
                    await consumer.seek_to_end()
        except aiokafka.errors.KafkaError as error:
            await consumer.stop()
            servers = self._kwargs["bootstrap_servers"]
            raise _kafka_error(
                error, f"cannot start a Kafka consumer of {sorted(self._topics)} on {servers}"
            ) from error
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group and disconnect (without committing: commit first)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _started(self) -> Any:
        if self._consumer is None:
            raise KafkaError("the consumer is not started")
        return self._consumer

    async def poll(
        self, *, timeout_ms: int = 1000, max_records: int | None = None
    ) -> list[Consumed]:
        """The next records, in offset order per partition; empty after ``timeout_ms``."""
        consumer = self._started()
        try:
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"consuming {sorted(self._topics)} failed") from error
        return [self._decode(message) for messages in batches.values() for message in messages]

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Consumed:
        consumer = self._started()
        try:
            message = await consumer.getone()
        except aiokafka.errors.ConsumerStoppedError:
            raise StopAsyncIteration from None
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"consuming {sorted(self._topics)} failed") from error
        return self._decode(message)

    def _decode(self, message: Any) -> Consumed:
        spec = self._topics.get(message.topic)
        headers = tuple((name, b"" if value is None else value) for name, value in message.headers)
        wire = WireMessage(message.key, message.value, headers, message.timestamp)
        return from_kafka(
            wire,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            value_type=spec.value_type if spec else None,
            key_type=spec.key_type if spec else None,
        )

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit ``{(topic, partition): next offset to read}`` for the group.

        Raises :class:`~sluice.errors.KafkaError` when the group rebalanced meanwhile (the new
        owner then re-reads from the last commit: duplicates, never loss).
        """
        consumer = self._started()
        if self._group_id is None:
            raise KafkaError("a consumer without group_id cannot commit offsets")
        if not offsets:
            return
        try:
            await consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(
                error, f"committing offsets of group {self._group_id!r} failed"
            ) from error

    async def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of a partition, ``None`` when there is none."""
        consumer = self._started()
        try:
            offset: int | None = await consumer.committed(TopicPartition(topic, partition))
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(
                error, f"reading the offsets of {self._group_id!r} failed"
            ) from error
        return offset

    def assignment(self) -> frozenset[Partition]:
        """The partitions this consumer reads now."""
        return frozenset((tp.topic, tp.partition) for tp in self._started().assignment())

    async def position(self, topic: str, partition: int) -> int:
        """The offset of the next record this consumer will read from a partition."""
        try:
            position: int = await self._started().position(TopicPartition(topic, partition))
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"no position for {topic}[{partition}]") from error
        return position

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read a partition from ``offset`` on (the next :meth:`poll` starts there)."""
        try:
            self._started().seek(TopicPartition(topic, partition), offset)
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"cannot seek {topic}[{partition}] to {offset}") from error
