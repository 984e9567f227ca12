"""Agent-id service gateways: a reverse proxy to the HTTP server of a python-service agent.

Any method; the path after the gateway id and the query string are forwarded, minus
``credentials`` / ``test-credentials`` (every other query pair belongs to the service). Both
bodies are streamed. Hop-by-hop headers are dropped both ways, and ``Host`` / ``Content-Length``
are left to the next hop to recompute. The gateway's configured headers (produce-options, e.g.
the session id from ``param:sessionId``) are added to the forwarded request and overwrite a
client header of the same name. The upstream status, headers and body come back as they are.

Where each service answers is a :class:`ServiceRoutes`, which may change while the gateway
serves: ``sluice run`` learns the port a service listens on once it is up, and marks a service
down (with the reason) while its worker is not running. A request to a service that is down, or
that refuses the connection, is answered 503 naming the agent, not 502: nothing failed in the
middle of a call, the service is just not there (yet).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Final
from urllib.parse import quote

import httpx
from quart import Response
from werkzeug.datastructures import Headers

from gateway.call import GatewayCall
from gateway.errors import BadGateway, BadRequest, GatewayTimeout, Unavailable
from gateway.headers import gateway_headers_for
from gateway.settings import GatewaySettings

__all__ = [
    "HOP_BY_HOP",
    "ServiceKey",
    "ServiceRoutes",
    "check_header_values",
    "forward",
    "request_headers",
    "response_headers",
    "target_url",
]

ServiceKey = tuple[str, str, str]
"""(tenant, application, agent id) of a running service agent."""

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        # Not hop-by-hop, but recomputed for the forwarded message.
        "host",
        "content-length",
    }
)


class ServiceRoutes(Mapping[ServiceKey, str]):
    """The base URL of each running service agent, by (tenant, application, agent id), and
    why each known service that has no URL now is down. Changed in place while the gateway
    serves (by the one event loop, so no lock is needed).

    >>> routes = ServiceRoutes({("t", "a", "s1"): "http://127.0.0.1:8000"})
    >>> routes.down(("t", "a", "s1"), "ModuleNotFoundError: No module named 'x'")
    >>> routes.get(("t", "a", "s1")), routes.reason(("t", "a", "s1"))
    (None, "ModuleNotFoundError: No module named 'x'")
    """

    def __init__(self, urls: Mapping[ServiceKey, str] | None = None) -> None:
        self._urls: dict[ServiceKey, str] = dict(urls or {})
        self._reasons: dict[ServiceKey, str] = {}

    def up(self, key: ServiceKey, base_url: str) -> None:
        """The service answers at ``base_url`` from now on."""
        self._urls[key] = base_url
        self._reasons.pop(key, None)

    def down(self, key: ServiceKey, reason: str) -> None:
        """The service is not running, because of ``reason`` (said to its callers)."""
        self._urls.pop(key, None)
        self._reasons[key] = reason

    def reason(self, key: ServiceKey) -> str | None:
        """Why the service is down, if it is and that is known."""
        return self._reasons.get(key)

    def __getitem__(self, key: ServiceKey) -> str:
        return self._urls[key]

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._urls)

    def __len__(self) -> int:
        return len(self._urls)


_CONNECT_TIMEOUT: Final = 5.0
_PRINTABLE: Final = (
    "its value must be printable ASCII (no CR, LF, NUL or other control characters, "
    "nothing outside ASCII)"
)
# Characters kept as they are when the decoded rest of the path is quoted again.
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"


def _dropped(headers: Iterable[tuple[str, str]]) -> set[str]:
    # A Connection header names further hop-by-hop headers of this message (RFC 9110 7.6.1).
    names = set(HOP_BY_HOP)
    for key, value in headers:
        if key.lower() == "connection":
            names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


def _is_bearer(key: str, value: str) -> bool:
    return key.lower() == "authorization" and value.strip().lower().startswith("bearer")


def request_headers(
    client: Iterable[tuple[str, str]],
    configured: Mapping[str, str],
    *,
    drop_authorization: bool = False,
) -> list[tuple[str, str]]:
    """The headers of the forwarded request: the client's end-to-end ones, then ``configured``.

    ``drop_authorization`` when the gateway itself authenticated the request: a Bearer
    Authorization header then carried the gateway's token, which is never forwarded (another
    scheme, such as Basic, is the service's and goes through).

    >>> request_headers([("Host", "gw"), ("X-A", "1"), ("s", "client")], {"s": "gw"})
    [('X-A', '1'), ('s', 'gw')]
    """
    client = list(client)
    dropped = _dropped(client) | {key.lower() for key in configured}
    kept = [
        (key, value)
        for key, value in client
        if key.lower() not in dropped and not (drop_authorization and _is_bearer(key, value))
    ]
    return kept + list(configured.items())


def response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The end-to-end headers of the upstream answer.

    >>> response_headers([("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1")])
    [('Set-Cookie', 'a=1')]
    """
    upstream = list(upstream)
    dropped = _dropped(upstream)
    return [(key, value) for key, value in upstream if key.lower() not in dropped]


def target_url(base_url: str, rest: str) -> str:
    """The upstream URL of the (decoded) path ``rest`` after the gateway id.

    >>> target_url("http://127.0.0.1:8000/", "the/custom path")
    'http://127.0.0.1:8000/the/custom%20path'
    """
    return f"{base_url.rstrip('/')}/{quote(rest, safe=_PATH_SAFE)}"


def _forwardable(value: str) -> bool:
    # RFC 9110 5.5: visible ASCII, space and tab. Characters outside ASCII have no agreed
    # encoding in a header (the HTTP client refuses them), and CR, LF or NUL would end or
    # split the header (the HTTP client refuses them too, which would look like the service
    # failing).
    return all(" " <= char <= "~" or char == "\t" for char in value)


def _source(call: GatewayCall, key: str) -> str:
    for header in call.spec.configured_headers:
        if header.key.lower() != key.lower():
            continue
        if header.value_from_parameters is not None:
            return f"parameter {header.value_from_parameters} (header {key})"
        if header.value_from_authentication is not None:
            return f"the user's {header.value_from_authentication} (header {key})"
    return f"header {key}"


def check_header_values(
    call: GatewayCall, client: Iterable[tuple[str, str]], configured: Mapping[str, str]
) -> None:
    """:class:`~gateway.errors.BadRequest` naming the first header (or the ``param:`` it comes
    from) whose value cannot be forwarded: outside printable ASCII, or with CR, LF or NUL."""
    for key, value in client:
        if not _forwardable(value):
            raise BadRequest(f"header {key} cannot be forwarded: {_PRINTABLE}")
    for key, value in configured.items():
        if not _forwardable(value):
            raise BadRequest(f"{_source(call, key)} cannot be forwarded: {_PRINTABLE}")


def _not_running(agent: str, reason: str | None, settings: GatewaySettings) -> Unavailable:
    detail = f"service {agent} is not running" + (f": {reason}" if reason else "")
    return Unavailable(detail, retry_after=settings.retry_after)


async def forward(
    client: httpx.AsyncClient,
    routes: ServiceRoutes,
    call: GatewayCall,
    *,
    method: str,
    rest: str,
    headers: Iterable[tuple[str, str]],
    body: AsyncIterable[bytes],
    settings: GatewaySettings,
) -> Response:
    """Forward one request to the service agent of ``call``; stream its answer back.

    Every failure before the upstream answers is a :class:`~gateway.errors.GatewayError`: 400
    for a header value that cannot be forwarded (:func:`check_header_values`), 503
    when the agent is not running (down in ``routes``, or refusing connections), 502 when it
    failed after accepting the connection, 504 when it did not answer in time.
    """
    spec = call.spec
    service = spec.service
    assert service is not None and service.agent_id is not None
    agent = service.agent_id
    query = call.query(settings)
    configured = gateway_headers_for(spec, dict(query.parameters), call.principal)
    forwarded = request_headers(headers, configured, drop_authorization=call.identity is not None)
    check_header_values(call, forwarded[: len(forwarded) - len(configured)], configured)
    key = (call.tenant, call.application, agent)
    base_url = routes.get(key)
    if base_url is None:
        raise _not_running(agent, routes.reason(key), settings)
    upstream_request = client.build_request(
        method,
        target_url(base_url, rest),
        params=list(query.passthrough),
        headers=forwarded,
        content=body,
        timeout=httpx.Timeout(query.timeout, connect=_CONNECT_TIMEOUT),
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.ConnectError as error:
        raise _not_running(agent, f"nothing accepts connections at {base_url}", settings) from error
    except httpx.TimeoutException as error:
        raise GatewayTimeout(
            f"service {agent} did not answer within {query.timeout:g} s"
        ) from error
    except httpx.TransportError as error:
        raise BadGateway(f"service {agent} failed: {error!r}") from error
    answer_headers = Headers(response_headers(upstream.headers.multi_items()))
    response = Response(_stream(upstream), status=upstream.status_code, headers=answer_headers)
    if "content-type" not in upstream.headers:
        response.headers.remove("Content-Type")
    # A streamed answer (server-sent events...) may last longer than Quart's response timeout.
    response.timeout = None
    return response


async def _stream(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Raw bytes: the Content-Encoding header goes back unchanged, so the body must too.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()
