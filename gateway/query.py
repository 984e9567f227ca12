"""The query string of every gateway endpoint, validated (docs/gateway.md, LangStream's messages).

``param:<name>`` are user parameters, ``option:<name>`` options, ``credentials`` and
``test-credentials`` the token for the authentication provider (the names live in
:mod:`sluice.protocol`, shared with the client). In agent-id (proxy) mode other keys belong to the
service behind the gateway and are passed through.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.errors import BadRequest
from gateway.messages import decode_offset
from sluice.application.model import GatewaySpec
from sluice.protocol import (
    BEARER_SUBPROTOCOL,
    CREDENTIALS,
    OPTION_PREFIX,
    PARAM_PREFIX,
    TEST_CREDENTIALS,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "Credentials",
    "GatewayQuery",
    "find_credentials",
    "parse_query",
]

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0


def _frozen(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class GatewayQuery:
    """A validated query: user parameters, options, credentials and, in agent-id mode, the pairs
    forwarded to the service (credentials removed, order and duplicates kept)."""

    parameters: Mapping[str, str] = field(default_factory=_frozen)
    options: Mapping[str, str] = field(default_factory=_frozen)
    credentials: str | None = None
    test_credentials: str | None = None
    passthrough: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    """Seconds a service gateway waits (``option:timeout``, else the default)."""

    def __post_init__(self) -> None:
        for name in ("parameters", "options"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))

    @property
    def position(self) -> str:
        """``latest``, ``earliest`` or an offset token (``option:position``; default latest)."""
        return self.options.get("position", "latest")


def _prefix(spec: GatewaySpec, tenant: str, application: str) -> str:
    return f"Error for gateway {spec.id} (tenant: {tenant}, appId: {application}): "


def _java_list(names: Iterable[str]) -> str:
    return f"[{', '.join(names)}]"


def _timeout(value: str, max_timeout: float) -> float:
    if not value.strip():
        raise BadRequest("'timeout' cannot be blank")
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0 or seconds > max_timeout:
        raise BadRequest(
            f"invalid timeout {value}: expected a number of seconds greater than 0 and at most "
            f"{max_timeout:g}"
        )
    return seconds


def _check_option(spec: GatewaySpec, name: str, value: str) -> None:
    if name == "position" and spec.type in ("consume", "chat"):
        if not value.strip():
            raise BadRequest("'position' cannot be blank")
        if value not in ("latest", "earliest"):
            decode_offset(value)
        return
    if name == "timeout" and spec.type == "service":
        return
    raise BadRequest(f"Unknown option {name}")


def parse_query(
    spec: GatewaySpec,
    pairs: Iterable[tuple[str, str]],
    *,
    tenant: str,
    application: str,
    max_timeout: float = MAX_TIMEOUT,
    default_timeout: float = DEFAULT_TIMEOUT,
) -> GatewayQuery:
    """Validate the URL-decoded query ``pairs`` of a request to gateway ``spec``.

    A key given twice keeps its last value (as LangStream's WebSocket parser). Every error is
    :class:`~gateway.errors.BadRequest` with LangStream's message.

    >>> g = GatewaySpec("chat-in", "produce", topic="t", parameters=("sessionId",))
    >>> parse_query(g, [("param:sessionId", "s1")], tenant="t", application="a").parameters
    mappingproxy({'sessionId': 's1'})
    """
    pairs = list(pairs)
    proxy = spec.is_proxy
    parameters: dict[str, str] = {}
    options: dict[str, str] = {}
    credentials: dict[str, str] = {}
    passthrough: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in (CREDENTIALS, TEST_CREDENTIALS):
            credentials[key] = value
            continue
        if proxy:
            passthrough.append((key, value))
        if key.startswith(PARAM_PREFIX):
            parameters[key[len(PARAM_PREFIX) :]] = value
        elif key.startswith(OPTION_PREFIX):
            options[key[len(OPTION_PREFIX) :]] = value
        elif not proxy:
            raise BadRequest(
                f"invalid query parameter {key}. To specify a gateway parameter, use the format "
                "param:<parameter_name>.To specify a option, use the format "
                "option:<option_name>."
            )
    for name, value in options.items():
        _check_option(spec, name, value)
    timeout = default_timeout
    if "timeout" in options:
        timeout = _timeout(options["timeout"], max_timeout)
    if len(credentials) > 1:
        raise BadRequest("credentials and test-credentials cannot be used together")
    known = spec.required_parameters
    if spec.type != "service":
        for name in known:
            if not parameters.get(name, "").strip():
                raise BadRequest(
                    f"{_prefix(spec, tenant, application)}missing required parameter {name}. "
                    f"Required parameters: {_java_list(known)}"
                )
    unknown = sorted(name for name in parameters if name not in known)
    if unknown:
        raise BadRequest(
            f"{_prefix(spec, tenant, application)}unknown parameters: {_java_list(unknown)}"
        )
    return GatewayQuery(
        parameters=parameters,
        options=options,
        credentials=credentials.get(CREDENTIALS),
        test_credentials=credentials.get(TEST_CREDENTIALS),
        passthrough=tuple(passthrough),
        timeout=timeout,
    )


@dataclass(frozen=True)
class Credentials:
    """The token for the authentication provider, and whether it came as test credentials."""

    token: str
    test: bool = False


def find_credentials(
    query: GatewayQuery,
    *,
    authorization: str | None = None,
    subprotocols: Sequence[str] = (),
) -> Credentials | None:
    """The request's credentials, from exactly one of: the query (``credentials`` or
    ``test-credentials``), an ``Authorization: Bearer <token>`` header, or the WebSocket
    subprotocol pair ``bearer, <token>``. None when there are none; two ways at once is
    :class:`~gateway.errors.BadRequest`.

    An Authorization header with another scheme (``Basic``...) is not the gateway's: it is
    ignored here (a proxied service may want it).
    """
    found: list[tuple[str, Credentials]] = []
    if query.credentials is not None:
        found.append(("the credentials query parameter", Credentials(query.credentials)))
    if query.test_credentials is not None:
        found.append(
            ("the test-credentials query parameter", Credentials(query.test_credentials, True))
        )
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            # An empty token is the provider's to refuse (401), like an empty credentials=.
            found.append(("the Authorization header", Credentials(token.strip())))
    protocols = [p.strip() for p in subprotocols]
    if BEARER_SUBPROTOCOL in protocols:
        index = protocols.index(BEARER_SUBPROTOCOL)
        if index + 1 >= len(protocols) or not protocols[index + 1]:
            raise BadRequest("the WebSocket subprotocol bearer must be followed by the token")
        found.append(("the WebSocket subprotocol", Credentials(protocols[index + 1])))
    if len(found) > 1:
        ways = ", ".join(way for way, _ in found)
        raise BadRequest(f"credentials were given in more than one way ({ways}); use only one")
    return found[0][1] if found else None
