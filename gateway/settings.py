"""The gateway's limits and timeouts, read once at the entry point and passed down, and how its
command-line options (:class:`sluice.commands.GatewayOptions`) make them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from sluice.application.model import AuthenticationSpec
from sluice.commands import API_TOKEN_ENV, GatewayOptions
from sluice.errors import SluiceError

__all__ = ["API_TOKEN_ENV", "GatewaySettings", "api_token", "gateway_settings", "test_provider"]


@dataclass(frozen=True)
class GatewaySettings:
    """Limits of one gateway process (docs/gateway.md, "Limits")."""

    max_body_bytes: int = 1024 * 1024
    """Largest HTTP request body accepted; above it the answer is 413."""
    default_service_timeout: float = 30.0
    """Seconds a service gateway waits for a reply without ``option:timeout``."""
    max_service_timeout: float = 300.0
    """Largest ``option:timeout`` a client may ask for."""
    max_pending: int = 10_000
    """Service requests waiting for a reply in this process; above it the answer is 503."""
    produce_timeout: float = 30.0
    """Seconds to wait for Kafka's acknowledgement before answering 503."""
    retry_after: int = 1
    """The ``Retry-After`` seconds of a 503."""
    max_message_bytes: int = 1024 * 1024
    """Largest WebSocket message accepted; above it the socket is closed with 1009."""
    messages_per_second: float = 100.0
    """Sustained rate of messages one WebSocket may send; above it (and ``message_burst``) the
    socket is closed with 1008."""
    message_burst: int = 200
    """Messages a WebSocket may send at once before ``messages_per_second`` applies."""
    ping_interval: float | None = 20.0
    """Seconds between WebSocket pings (keeps proxies from closing idle sockets); None: never."""
    allowed_origins: tuple[str, ...] | None = None
    """Browser origins (``scheme://host[:port]``) allowed to open WebSockets; None: any origin.
    A request without ``Origin`` (not a browser) is always allowed."""
    test_provider: AuthenticationSpec | None = None
    """The provider that checks ``test-credentials``; None: test mode answers 401."""
    shutdown_grace: float = 35.0
    """Seconds in-flight requests get to finish when the gateway stops."""
    auth_failure_burst: int | None = 100
    """Failed authentications one client (IP address) may have at once before it is refused
    with 429; None: no limit."""
    auth_failures_per_second: float = 1.0
    """Failed authentications per second a client regains after its burst."""
    client_ip_header: str | None = None
    """A header set by a trusted proxy that names the client (``X-Forwarded-For``: its
    right-most public address, which the edge proxy appended); None: the connection's peer
    address. Behind Knative every request comes from the queue-proxy, so set it there."""
    api_token: str | None = field(default=None, repr=False)
    """The bearer token LangStream's CLI must send to the control-plane routes
    (:mod:`gateway.routes.applications`); None: they are open, as LangStream's are by default.
    Read from :data:`API_TOKEN_ENV`, never from the command line (where ``ps`` would show it)."""
    ui: bool = False
    """Serve the chat web page of every application at ``/ui/{tenant}/{application}``
    (:mod:`gateway.routes.ui`); off by default."""

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if not 0 < self.default_service_timeout <= self.max_service_timeout:
            raise ValueError(
                "default_service_timeout must be greater than 0 and at most max_service_timeout"
            )
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if self.produce_timeout <= 0:
            raise ValueError("produce_timeout must be greater than 0")
        if self.max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        if self.messages_per_second <= 0 or self.message_burst < 1:
            raise ValueError("messages_per_second must be greater than 0 and message_burst >= 1")
        if self.auth_failure_burst is not None and (
            self.auth_failure_burst < 1 or self.auth_failures_per_second <= 0
        ):
            raise ValueError(
                "auth_failure_burst must be at least 1 and auth_failures_per_second greater than 0"
            )
        if self.ping_interval is not None and self.ping_interval <= 0:
            raise ValueError("ping_interval must be greater than 0 (or None for no pings)")


def test_provider(options: GatewayOptions, tenant: str) -> AuthenticationSpec | None:
    """The test provider of ``--test-auth`` / ``--test-auth-config``, built once to check it;
    SluiceError naming the flag when they are wrong."""
    if options.test_auth is None:
        if options.test_auth_config:
            raise SluiceError("--test-auth-config needs --test-auth PROVIDER")
        return None
    configuration: dict[str, str] = {}
    for item in options.test_auth_config:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SluiceError(f"--test-auth-config {item!r}: expected KEY=VALUE")
        configuration[key.strip()] = value
    spec = AuthenticationSpec(options.test_auth, configuration=configuration)
    # Imported here: the providers pull in HTTP clients that settings alone do not need.
    from auth.provider_config import InvalidProviderConfiguration
    from auth.providers import build_provider

    try:
        provider = build_provider(spec.provider, spec.configuration, tenant=tenant)
    except InvalidProviderConfiguration as error:
        raise SluiceError(f"--test-auth: {error}") from None
    asyncio.run(provider.aclose())
    return spec


def api_token(environ: Mapping[str, str]) -> str | None:
    """The control-plane token :data:`API_TOKEN_ENV` holds (surrounding blanks dropped); None
    when it is unset or blank."""
    token = environ.get(API_TOKEN_ENV, "").strip()
    return token or None


def gateway_settings(options: GatewayOptions, tenant: str) -> GatewaySettings:
    """The settings the options give (the test provider checked for ``tenant``); SluiceError
    naming the option that is wrong."""
    if options.auth_failure_limit < 0:
        raise SluiceError("--auth-failure-limit must be 0 (no limit) or more")
    if not options.produce_timeout > 0:
        raise SluiceError("--produce-timeout must be greater than 0")
    if not options.drain_timeout > 0:
        raise SluiceError("--drain-timeout must be greater than 0")
    return GatewaySettings(
        allowed_origins=options.allowed_origins or None,
        test_provider=test_provider(options, tenant),
        auth_failure_burst=options.auth_failure_limit or None,
        client_ip_header=options.client_ip_header or None,
        produce_timeout=options.produce_timeout,
        shutdown_grace=options.drain_timeout,
    )
