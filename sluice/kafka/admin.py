"""Topic administration: create an application's topics, delete, list and describe topics.

Each call opens a short-lived aiokafka admin client. Broker answers become
:class:`~sluice.errors.KafkaError` naming the topic; ``retriable`` follows aiokafka's flag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import aiokafka.errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sluice.errors import KafkaError
from sluice.kafka.connection import KafkaSettings
from sluice.kafka.diagnosis import startup_error
from sluice.kafka.errors import UnknownTopic
from sluice.kafka.errors import kafka_error as _kafka_error

if TYPE_CHECKING:
    from sluice.application.model import TopicSpec

__all__ = [
    "DEFAULT_ADMIN_TIMEOUT_MS",
    "TopicDescription",
    "delete_topics",
    "describe_topic",
    "ensure_topics",
    "list_topics",
]

DEFAULT_ADMIN_TIMEOUT_MS: Final = 30_000
_ALREADY_EXISTS: Final[int] = aiokafka.errors.TopicAlreadyExistsError.errno
_UNKNOWN_TOPIC: Final[int] = aiokafka.errors.UnknownTopicOrPartitionError.errno


@dataclass(frozen=True)
class TopicDescription:
    """A topic as the cluster has it: partition count, its configuration (all entries,
    defaults included) and its replication factor."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    #: Replicas of its first partition.
    replication_factor: int = 1


@asynccontextmanager
async def _admin(settings: KafkaSettings) -> AsyncIterator[Any]:
    kwargs = settings.client_kwargs("admin")
    kwargs.setdefault("client_id", "sluice-admin")
    admin = AIOKafkaAdminClient(**kwargs)
    try:
        try:
            await admin.start()
        except aiokafka.errors.KafkaError as error:
            where = settings.bootstrap_servers
            raise await startup_error(
                error, kwargs, f"cannot connect to Kafka at {where}"
            ) from error
        yield admin
    finally:
        await admin.close()


def _broker_error(code: int, message: str | None, what: str) -> KafkaError:
    error = aiokafka.errors.for_code(code)
    detail = f"{error.__name__}: {message}" if message else error.__name__
    return KafkaError(f"{what}: {detail}", retriable=error.retriable)


def _new_topic(topic: TopicSpec, default_replication: int) -> NewTopic:
    raw = topic.options.get("replication-factor", default_replication)
    try:
        if isinstance(raw, bool):
            raise ValueError
        replication = int(raw)
    except (TypeError, ValueError):
        replication = 0
    if replication < 1:
        raise KafkaError(
            f"topic {topic.name!r}: replication-factor must be a positive integer, not {raw!r}"
        )
    if topic.partitions < 0:
        raise KafkaError(f"topic {topic.name!r}: partitions must not be negative")
    min_isr = topic.config.get("min.insync.replicas")
    if min_isr is not None and str(min_isr).isdigit() and int(min_isr) > replication:
        raise KafkaError(
            f"topic {topic.name!r}: min.insync.replicas {min_isr} is more than its "
            f"replication-factor {replication}: no write could ever be acknowledged"
        )
    return NewTopic(
        topic.name,
        num_partitions=topic.partitions or 1,
        replication_factor=replication,
        topic_configs={name: str(value) for name, value in topic.config.items()},
    )


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[TopicSpec],
    *,
    timeout_ms: int = DEFAULT_ADMIN_TIMEOUT_MS,
) -> tuple[str, ...]:
    """Create the topics whose ``creation_mode`` is ``create-if-not-exists`` and that do not
    exist yet; return the names created.

    Partitions ``0`` means one partition; ``options["replication-factor"]`` (default: the
    cluster's ``default.replication.factor``, 3 on ``sluice kafka start --brokers 3``, 1 on the
    single local broker) and ``config`` (topic configs such as ``retention.ms`` or
    ``min.insync.replicas``; without it the brokers' ``min.insync.replicas`` applies) are
    applied on creation only: an existing topic is left as it is. A ``min.insync.replicas``
    above the replication factor is refused, since no write could succeed. Raises
    :class:`~sluice.errors.KafkaError` naming the topic the broker refused.
    """
    specs: dict[str, TopicSpec] = {}
    for topic in topics:
        if topic.creation_mode == "create-if-not-exists":
            specs.setdefault(topic.name, topic)
    if not specs:
        return ()
    async with _admin(settings) as admin:
        default = 1
        if any("replication-factor" not in t.options for t in specs.values()):
            default = await _default_replication(admin)
        wanted = {name: _new_topic(topic, default) for name, topic in specs.items()}
        try:
            response = await admin.create_topics(list(wanted.values()), timeout_ms=timeout_ms)
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"creating topics {sorted(wanted)} failed") from error
    created: list[str] = []
    for name, code, *message in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != _ALREADY_EXISTS:
            raise _broker_error(
                code, message[0] if message else None, f"cannot create topic {name!r}"
            )
    return tuple(created)


async def _default_replication(admin: Any) -> int:
    """The cluster's ``default.replication.factor`` (what a broker creates topics with), read
    from one broker: a topic without ``replication-factor`` gets it, as with Kafka's own tools."""
    try:
        cluster = await admin.describe_cluster()
        brokers = sorted(broker["node_id"] for broker in cluster.get("brokers", []))
        if not brokers:
            return 1
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(brokers[0]))]
        )
    except aiokafka.errors.KafkaError as error:
        raise _kafka_error(error, "reading the cluster's default.replication.factor") from error
    for response in responses:
        for _code, _message, _type, _name, entries, *_ in response.resources:
            for entry in entries:
                if entry[0] == "default.replication.factor" and str(entry[1]).isdigit():
                    return int(entry[1])
    return 1


async def delete_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    *,
    timeout_ms: int = DEFAULT_ADMIN_TIMEOUT_MS,
) -> tuple[str, ...]:
    """Delete topics; names that do not exist are skipped. Returns the names deleted."""
    unique = list(dict.fromkeys(names))
    if not unique:
        return ()
    async with _admin(settings) as admin:
        try:
            response = await admin.delete_topics(unique, timeout_ms=timeout_ms)
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"deleting topics {unique} failed") from error
    deleted: list[str] = []
    for name, code, *_ in response.topic_error_codes:
        if code == 0:
            deleted.append(name)
        elif code != _UNKNOWN_TOPIC:
            raise _broker_error(code, None, f"cannot delete topic {name!r}")
    return tuple(deleted)


async def list_topics(settings: KafkaSettings) -> frozenset[str]:
    """The names of the cluster's topics, internal ones (``__consumer_offsets``...) excluded."""
    async with _admin(settings) as admin:
        try:
            # All topics: naming some in a metadata request may auto-create them.
            topics = await admin.describe_topics()
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, "listing topics failed") from error
    return frozenset(t["topic"] for t in topics if not t.get("is_internal", False))


async def describe_topic(settings: KafkaSettings, name: str) -> TopicDescription:
    """Partition count and configuration of a topic; :class:`~sluice.errors.KafkaError` when
    it does not exist."""
    async with _admin(settings) as admin:
        try:
            topics = await admin.describe_topics()
            found = [t for t in topics if t["topic"] == name]
            if not found:
                raise UnknownTopic(name)
            if found[0]["error_code"]:
                raise _broker_error(found[0]["error_code"], None, f"cannot describe {name!r}")
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name)]
            )
        except aiokafka.errors.KafkaError as error:
            raise _kafka_error(error, f"describing topic {name!r} failed") from error
    config: dict[str, str] = {}
    for response in responses:
        for code, message, _type, _name, entries, *_ in response.resources:
            if code:
                raise _broker_error(code, message, f"cannot read the config of topic {name!r}")
            config.update({entry[0]: entry[1] for entry in entries if entry[1] is not None})
    partitions = found[0]["partitions"]
    replicas = len(partitions[0]["replicas"]) if partitions else 0
    return TopicDescription(name, len(partitions), MappingProxyType(config), replicas)
