"""Which gateway a client calls and what every request to it carries: :class:`Target`, its
:class:`Credentials` and the base URL. Pure: the URLs and the query come from
:mod:`sluice.protocol`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from sluice.protocol import GatewayKind, http_path, query_pairs, websocket_path

__all__ = ["DEFAULT_TENANT", "DEFAULT_URL", "Credentials", "Target", "base_url"]

DEFAULT_URL: Final = "http://127.0.0.1:8091"
DEFAULT_TENANT: Final = "default"


@dataclass(frozen=True)
class Credentials:
    """A token for the gateway's authentication provider and how to send it.

    By default it travels as the ``credentials`` query parameter (``test-credentials`` when
    ``test``), as LangStream's clients send it; ``as_header`` sends ``Authorization: Bearer``
    instead, which keeps it out of access logs. Test credentials exist only as a query parameter.
    """

    token: str = field(repr=False)
    test: bool = False
    as_header: bool = False

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("the credentials are empty")
        if self.test and self.as_header:
            raise ValueError("test credentials are sent as a query parameter, not a header")


@dataclass(frozen=True)
class Target:
    """One gateway of one application, and what every request to it carries.

    >>> t = Target("http://127.0.0.1:8091", "default", "my-app", "chat", (("sessionId", "s1"),))
    >>> t.ws_url("chat")
    'ws://127.0.0.1:8091/v1/chat/default/my-app/chat?param%3AsessionId=s1'
    """

    base_url: str
    tenant: str
    application: str
    gateway: str
    parameters: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    credentials: Credentials | None = None

    def query(self) -> tuple[tuple[str, str], ...]:
        """``param:`` and ``option:`` pairs, then the credentials unless sent as a header."""
        creds = self.credentials
        if creds is None or creds.as_header:
            return query_pairs(self.parameters, self.options)
        return query_pairs(self.parameters, self.options, token=creds.token, test=creds.test)

    def headers(self) -> dict[str, str]:
        creds = self.credentials
        if creds is not None and creds.as_header:
            return {"Authorization": f"Bearer {creds.token}"}
        return {}

    def http_url(self, kind: GatewayKind) -> str:
        """The HTTP endpoint of ``kind`` (produce or service), without the query."""
        return self.base_url + http_path(kind, self.tenant, self.application, self.gateway)

    def ws_url(self, kind: GatewayKind) -> str:
        """The WebSocket endpoint of ``kind`` (produce, consume or chat), with the query."""
        scheme, rest = self.base_url.split("://", 1)
        path = websocket_path(kind, self.tenant, self.application, self.gateway)
        url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}"
        query = self.query()
        return f"{url}?{urlencode(query)}" if query else url


def base_url(text: str) -> str:
    """``text`` as an ``http(s)://host[:port][/prefix]`` base URL (``ws``/``wss`` are accepted
    and mapped); ValueError when it is not one.

    >>> base_url("ws://localhost:8091/")
    'http://localhost:8091'
    """
    parts = urlsplit(text.strip())
    scheme = {"http": "http", "https": "https", "ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the gateway URL takes no query or fragment: {text!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
