"""The headers a gateway sets on records and the filters it applies to consumed ones.

A configured header (:class:`~sluice.application.model.HeaderSpec`) takes its value from a
literal, a ``param:`` query parameter, or a field of the authenticated principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from gateway.errors import BadRequest, Unauthorized
from sluice.application.model import GatewaySpec, HeaderSpec

__all__ = [
    "SERVICE_REQUEST_ID_HEADER",
    "HeaderFilter",
    "Principal",
    "gateway_headers_for",
    "header_filter",
    "reserved_header_keys",
    "resolve_headers",
]

SERVICE_REQUEST_ID_HEADER: Final = "langstream-service-request-id"
"""The correlation header: a topics-mode service gateway sets it on each request, the agents
carry it to the reply, and the gateway's reply router matches replies by it."""

Principal = Mapping[str, object]
"""The authenticated user's fields (``subject``, ``email``...), as the provider returned them."""


def reserved_header_keys(spec: GatewaySpec) -> frozenset[str]:
    """Header names a client message may not set: the ones the gateway sets itself (and the
    correlation header of a topics-mode service gateway)."""
    keys = {header.key for header in spec.configured_headers}
    if spec.type == "service" and spec.service is not None and not spec.is_proxy:
        keys.add(SERVICE_REQUEST_ID_HEADER)
    return frozenset(keys)


def _principal_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lookup(
    header: HeaderSpec, parameters: Mapping[str, str], principal: Principal | None
) -> str | None:
    """The header's value, or None when its parameter is absent or blank."""
    if header.value is not None:
        return header.value
    if header.value_from_parameters is not None:
        return parameters.get(header.value_from_parameters) or None
    field = header.value_from_authentication
    if field is None:
        return None
    if principal is None:
        raise Unauthorized(
            f"header {header.key} needs the authenticated user's {field}, "
            "but the request is not authenticated"
        )
    value = principal.get(field)
    if value is None or value == "":
        raise Unauthorized(f"header {header.key} cannot be empty: the principal has no {field}")
    return _principal_text(value)


def resolve_headers(
    headers: Sequence[HeaderSpec],
    parameters: Mapping[str, str],
    principal: Principal | None,
    *,
    optional_parameters: bool = False,
) -> dict[str, str]:
    """The values of configured headers.

    A header whose parameter is absent is an error (``header <k> cannot be empty``), unless
    ``optional_parameters`` (service gateways), where it is simply not set. A missing principal
    field is :class:`~gateway.errors.Unauthorized`.
    """
    resolved: dict[str, str] = {}
    for header in headers:
        if not header.key:
            raise BadRequest("Header key cannot be empty")
        value = _lookup(header, parameters, principal)
        if value is None:
            if optional_parameters:
                continue
            raise BadRequest(f"header {header.key} cannot be empty")
        resolved[header.key] = value
    return resolved


def gateway_headers_for(
    spec: GatewaySpec, parameters: Mapping[str, str], principal: Principal | None
) -> dict[str, str]:
    """:func:`resolve_headers` of the gateway's configured headers, with its type's rule."""
    return resolve_headers(
        spec.configured_headers,
        parameters,
        principal,
        optional_parameters=spec.type == "service",
    )


@dataclass(frozen=True)
class HeaderFilter:
    """An AND of header equalities; an expected value of None never matches.

    >>> HeaderFilter((("session", "s1"),)).matches({"session": "s1", "other": "x"})
    True
    """

    expected: tuple[tuple[str, str | None], ...] = ()

    def matches(self, headers: Mapping[str, str]) -> bool:
        return all(value is not None and headers.get(key) == value for key, value in self.expected)

    def with_header(self, key: str, value: str) -> HeaderFilter:
        """This filter and one more equality (the service gateway's request id)."""
        return HeaderFilter((*self.expected, (key, value)))


def header_filter(
    spec: GatewaySpec, parameters: Mapping[str, str], principal: Principal | None
) -> HeaderFilter:
    """The filter of consumed records: consume-options filters (consume), chat-options headers
    (chat), service-options headers (service). A filter whose parameter or principal field is
    missing expects nothing and drops every record."""
    expected: list[tuple[str, str | None]] = []
    for header in spec.filter_headers:
        try:
            value = _lookup(header, parameters, principal)
        except Unauthorized:
            value = None
        expected.append((header.key, value))
    return HeaderFilter(tuple(expected))
