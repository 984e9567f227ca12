"""Kafka connection settings: bootstrap servers and Kafka client properties.

:class:`KafkaSettings` takes client properties under their Java names and turns them into
aiokafka keyword arguments per client role (producer, consumer, admin). Unknown options, and the
ones Sluice fixes itself, are rejected when the settings are made.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from aiokafka.helpers import create_ssl_context

from sluice.errors import KafkaError

__all__ = ["KafkaSettings", "Role"]

Role: TypeAlias = Literal["producer", "consumer", "admin"]

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
