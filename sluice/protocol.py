"""The gateway's URL and query contract, in one place for the server, the client and the summary.

Every gateway answers at ``/api/gateways/<kind>/<tenant>/<application>/<gateway>`` (HTTP) and,
for produce, consume and chat, at ``/v1/<kind>/<tenant>/<application>/<gateway>`` (WebSocket),
as LangStream's gateway does. The query carries ``param:<name>`` (user parameters),
``option:<name>`` (options), and ``credentials`` or ``test-credentials`` (the token for the
authentication provider); a WebSocket client may send the token as the subprotocol pair
``bearer, <token>`` instead. The server (gateway/query.py, gateway/routes), the client
(sluice.client) and the printed examples (sluice/cli/summary.py) build or read these
names here only, so they cannot drift apart. The chat page's script (gateway/ui_assets) cannot
import Python and spells the WebSocket path itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal
from urllib.parse import quote

__all__ = [
    "BEARER_SUBPROTOCOL",
    "CREDENTIALS",
    "HTTP_PREFIX",
    "OPTION_PREFIX",
    "PARAM_PREFIX",
    "TEST_CREDENTIALS",
    "WEBSOCKET_PREFIX",
    "GatewayKind",
    "http_path",
    "http_route",
    "option_key",
    "param_key",
    "query_pairs",
    "websocket_path",
    "websocket_route",
]

GatewayKind = Literal["produce", "consume", "chat", "service"]

HTTP_PREFIX: Final = "/api/gateways"
WEBSOCKET_PREFIX: Final = "/v1"
PARAM_PREFIX: Final = "param:"
OPTION_PREFIX: Final = "option:"
CREDENTIALS: Final = "credentials"
TEST_CREDENTIALS: Final = "test-credentials"
BEARER_SUBPROTOCOL: Final = "bearer"

# The route variables of the server's patterns (Quart's <name> syntax).
_ROUTE_SEGMENTS: Final = "<tenant>/<application>/<gateway>"


def _segments(tenant: str, application: str, gateway: str) -> str:
    # Each name is one path segment: a '/' or '?' in it must not change the URL's shape.
    return "/".join(quote(p, safe="") for p in (tenant, application, gateway))


def http_path(kind: GatewayKind, tenant: str, application: str, gateway: str) -> str:
    """The HTTP path of a gateway, each name percent-encoded.

    >>> http_path("produce", "default", "my-app", "in")
    '/api/gateways/produce/default/my-app/in'
    """
    return f"{HTTP_PREFIX}/{kind}/{_segments(tenant, application, gateway)}"


def websocket_path(kind: GatewayKind, tenant: str, application: str, gateway: str) -> str:
    """The WebSocket path of a gateway, each name percent-encoded.

    >>> websocket_path("chat", "default", "my app", "chat")
    '/v1/chat/default/my%20app/chat'
    """
    return f"{WEBSOCKET_PREFIX}/{kind}/{_segments(tenant, application, gateway)}"


def http_route(kind: GatewayKind) -> str:
    """The server's route pattern for :func:`http_path`.

    >>> http_route("service")
    '/api/gateways/service/<tenant>/<application>/<gateway>'
    """
    return f"{HTTP_PREFIX}/{kind}/{_ROUTE_SEGMENTS}"


def websocket_route(kind: GatewayKind) -> str:
    """The server's route pattern for :func:`websocket_path`."""
    return f"{WEBSOCKET_PREFIX}/{kind}/{_ROUTE_SEGMENTS}"


def param_key(name: str) -> str:
    """The query key of user parameter ``name``.

    >>> param_key("sessionId")
    'param:sessionId'
    """
    return f"{PARAM_PREFIX}{name}"


def option_key(name: str) -> str:
    """The query key of option ``name``."""
    return f"{OPTION_PREFIX}{name}"


def query_pairs(
    parameters: Iterable[tuple[str, str]] = (),
    options: Iterable[tuple[str, str]] = (),
    *,
    token: str | None = None,
    test: bool = False,
) -> tuple[tuple[str, str], ...]:
    """The query of a request: parameters, then options, then the token (if any) as
    ``credentials`` or, when ``test``, ``test-credentials``.

    >>> query_pairs([("sessionId", "s1")], [("position", "earliest")], token="t")
    (('param:sessionId', 's1'), ('option:position', 'earliest'), ('credentials', 't'))
    """
    pairs = [(param_key(k), v) for k, v in parameters]
    pairs += [(option_key(k), v) for k, v in options]
    if token is not None:
        pairs.append((TEST_CREDENTIALS if test else CREDENTIALS, token))
    return tuple(pairs)
