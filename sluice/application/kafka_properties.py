"""Kafka client properties (``instance.yaml``'s ``streamingCluster.configuration.admin``):
which Java client properties Sluice supports and the aiokafka keyword arguments they become.

Pure data and checks, no client: :func:`check_properties` lists every unsupported or malformed
property, so ``sluice validate`` reports each at its line in ``instance.yaml``; the Kafka
adapter (:mod:`sluice.kafka.connection`) calls :func:`aiokafka_kwargs` for its clients and
:mod:`sluice.kafka.tls` reads the ``ssl.*`` files and certificates checked here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from sluice.errors import KafkaError

__all__ = [
    "ROLES",
    "TLS_PROPERTIES",
    "Role",
    "aiokafka_kwargs",
    "check_properties",
    "store_type",
]

Role: TypeAlias = Literal["producer", "consumer", "admin"]

ROLES: Final[frozenset[Role]] = frozenset({"producer", "consumer", "admin"})
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


def _mechanism(value: Any) -> str:
    return _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")(value)


#: Kafka's Java login callback handlers for OAUTHBEARER with an OAuth client-credentials
#: token endpoint; Sluice's own token provider (sluice.kafka.oauth) does what they do.
_LOGIN_HANDLERS: Final = frozenset(
    {
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
    }
)


def _login_handler(value: Any) -> str:
    text = _text(value)
    if text not in _LOGIN_HANDLERS:
        raise ValueError(
            "only Kafka's OAuthBearerLoginCallbackHandler (client credentials) is supported, "
            f"not {text}"
        )
    return text


@dataclass(frozen=True)
class _Option:
    kwarg: str
    convert: Callable[[Any], Any]
    roles: frozenset[Role] = ROLES


# Kafka client properties (Java names) that map onto aiokafka keyword arguments.
_OPTIONS: Final[Mapping[str, _Option]] = MappingProxyType(
    {
        "client.id": _Option("client_id", _text),
        "security.protocol": _Option(
            "security_protocol", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        ),
        "sasl.mechanism": _Option("sasl_mechanism", _mechanism),
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
#: Read into an SSL context by :mod:`sluice.kafka.tls` when a client is made. Locations are
#: files where the client runs; ``certificates``, ``key`` and ``certificate.chain`` are PEM text
#: (from ``secrets.yaml``), as Kafka's Java client takes them.
TLS_PROPERTIES: Final = frozenset(
    {
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.certificates",
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
    }
)
_STORE_TYPES: Final = ("PEM", "PKCS12", "JKS")
# Sluice encodes records itself (sluice.events), so serializer settings do not apply; the rest
# are Java class or JVM settings with nothing to do in Python (TLS versions follow Python's).
_IGNORED: Final = frozenset(
    {
        "key.serializer",
        "value.serializer",
        "key.deserializer",
        "value.deserializer",
        "ssl.protocol",
        "ssl.enabled.protocols",
        "ssl.keymanager.algorithm",
        "ssl.trustmanager.algorithm",
    }
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
#: OAUTHBEARER's settings: the token endpoint and the login handler, checked here; the client id,
#: secret and scope come from sasl.jaas.config.
_OAUTH_OPTIONS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "sasl.oauthbearer.token.endpoint.url": _text,
        "sasl.login.callback.handler.class": _login_handler,
    }
)
_JAAS = re.compile(r"^\s*([\w.$]+)\s+(?:required|requisite|sufficient|optional)\s*(.*?);?\s*$")
_JAAS_OPTION = re.compile(r"""(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))""")


def _parse_jaas(value: Any) -> dict[str, str]:
    """``sasl.jaas.config`` of the PLAIN or SCRAM login module -> username and password; of the
    OAuthBearer login module -> the OAuth client id, secret and scope."""
    match = _JAAS.match(_text(value))
    if not match:
        raise ValueError('expected \'<LoginModule> required username="..." password="...";\'')
    module, rest = match.groups()
    if not module.endswith(("PlainLoginModule", "ScramLoginModule", "OAuthBearerLoginModule")):
        raise ValueError(
            f"only the PLAIN, SCRAM and OAuthBearer login modules are supported, not {module}"
        )
    options = {
        m.group(1): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        for m in _JAAS_OPTION.finditer(rest)
    }
    if module.endswith("OAuthBearerLoginModule"):
        if "clientId" not in options or "clientSecret" not in options:
            raise ValueError("the OAuthBearer login module needs clientId and clientSecret")
        oauth = {"oauth_client_id": options["clientId"]}
        oauth["oauth_client_secret"] = options["clientSecret"]
        if "scope" in options:
            oauth["oauth_scope"] = options["scope"]
        return {"sasl_mechanism": "OAUTHBEARER", **oauth}
    if "username" not in options or "password" not in options:
        raise ValueError("the login module needs username and password")
    kwargs = {
        "sasl_plain_username": options["username"],
        "sasl_plain_password": options["password"],
    }
    if module.endswith("PlainLoginModule"):
        kwargs["sasl_mechanism"] = "PLAIN"
    return kwargs


def store_type(properties: Mapping[str, Any], kind: Literal["truststore", "keystore"]) -> str:
    """``ssl.<kind>.type`` in capitals; as in Kafka's Java client, JKS when not given (PEM when
    only inline PEM text is)."""
    given = properties.get(f"ssl.{kind}.type")
    if given is not None:
        return _choice(*_STORE_TYPES)(given)
    inline = "ssl.truststore.certificates" if kind == "truststore" else "ssl.keystore.key"
    return "PEM" if inline in properties else "JKS"


def _check_tls(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name in TLS_PROPERTIES & properties.keys():
        try:
            _text(properties[name])
        except ValueError as error:
            problems.append((name, str(error)))
    kinds: tuple[Literal["truststore", "keystore"], ...] = ("truststore", "keystore")
    for kind in kinds:
        try:
            kind_type = store_type(properties, kind)
        except ValueError as error:
            problems.append((f"ssl.{kind}.type", str(error)))
            continue
        location = f"ssl.{kind}.location"
        inline = (
            ("ssl.truststore.certificates",)
            if kind == "truststore"
            else ("ssl.keystore.key", "ssl.keystore.certificate.chain")
        )
        given = [name for name in inline if name in properties]
        if given and kind_type != "PEM":
            problems.append((given[0], f"PEM text needs ssl.{kind}.type PEM, not {kind_type}"))
        if given and location in properties:
            problems.append((given[0], f"give either {location} or {' and '.join(inline)}"))
        if kind == "keystore" and len(given) == 1:
            problems.append((given[0], f"needs {' and '.join(inline)} together"))
        password = f"ssl.{kind}.password"
        if kind_type == "PEM" and password in properties:
            problems.append(
                (password, "a PEM store has no password (ssl.key.password is the private key's)")
            )
        if (
            kind_type != "PEM"
            and location not in properties
            and (f"ssl.{kind}.type" in properties or password in properties)
        ):
            problems.append((f"ssl.{kind}.type", f"a {kind_type} {kind} needs {location}"))
    algorithm = properties.get("ssl.endpoint.identification.algorithm", "https")
    if isinstance(algorithm, str) and algorithm.lower() not in ("https", ""):
        problems.append(
            (
                "ssl.endpoint.identification.algorithm",
                f"expected https or an empty string, got {algorithm!r}",
            )
        )
    return problems


def check_properties(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem of these client properties (``bootstrap.servers`` excluded) as
    ``(property, message)``: unknown, reserved by Sluice, or malformed. Empty when usable."""
    problems: list[tuple[str, str]] = []
    for name, value in properties.items():
        try:
            if name in _OPTIONS:
                _OPTIONS[name].convert(value)
            elif name == "sasl.jaas.config":
                _parse_jaas(value)
            elif name in _OAUTH_OPTIONS:
                _OAUTH_OPTIONS[name](value)
            elif name not in TLS_PROPERTIES and name not in _IGNORED:
                reason = _RESERVED.get(name, "it has no aiokafka equivalent in Sluice")
                raise ValueError(f"not supported: {reason}")
        except ValueError as error:
            problems.append((name, str(error)))
    problems += _check_tls(properties)
    sasl = str(properties.get("security.protocol", "")).upper().startswith("SASL_")
    mechanism = str(properties.get("sasl.mechanism", "PLAIN")).upper()
    if sasl and "sasl.jaas.config" not in properties and mechanism != "GSSAPI":
        needs = "clientId and clientSecret" if mechanism == "OAUTHBEARER" else "username, password"
        problems.append(("sasl.jaas.config", f"{mechanism} needs a login module with {needs}"))
    if mechanism == "OAUTHBEARER" and "sasl.oauthbearer.token.endpoint.url" not in properties:
        problems.append(
            ("sasl.oauthbearer.token.endpoint.url", "OAUTHBEARER needs the token endpoint")
        )
    return sorted(set(problems))


def aiokafka_kwargs(properties: Mapping[str, Any]) -> dict[Role, dict[str, Any]]:
    """aiokafka keyword arguments per client role, without the SSL context and with OAUTHBEARER's
    ``oauth_*`` settings in place of a token provider (the Kafka adapter makes both); a
    :class:`~sluice.errors.KafkaError` naming the first bad property."""
    problems = check_properties(properties)
    if problems:
        name, message = problems[0]
        raise KafkaError(f"Kafka client option {name!r}: {message}")
    kwargs: dict[Role, dict[str, Any]] = {role: {} for role in ROLES}
    for name, value in properties.items():
        if name == "sasl.oauthbearer.token.endpoint.url":
            for role in ROLES:
                kwargs[role]["oauth_token_endpoint"] = _text(value)
        elif name in _OPTIONS:
            option = _OPTIONS[name]
            for role in option.roles:
                kwargs[role][option.kwarg] = option.convert(value)
        elif name == "sasl.jaas.config":
            jaas = _parse_jaas(value)
            for role in ROLES:
                # An explicit sasl.mechanism wins over the one the login module implies.
                kwargs[role] = {**jaas, **kwargs[role]}
    return kwargs
