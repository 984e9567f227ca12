"""The request object of every gateway route: which gateway a request addresses, its query
and, once authenticated, who calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from auth.provider import Identity
from gateway.query import GatewayQuery, parse_query
from gateway.settings import GatewaySettings
from sluice.application.model import GatewaySpec

__all__ = ["GatewayCall"]


@dataclass(frozen=True)
class GatewayCall:
    """Which gateway a request addresses, its URL-decoded query pairs and, once authenticated,
    the caller's identity (None for an open gateway)."""

    tenant: str
    application: str
    spec: GatewaySpec
    pairs: tuple[tuple[str, str], ...] = ()
    identity: Identity | None = None
    _queries: dict[tuple[float, float], GatewayQuery] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Parsed queries by (max, default) timeout: a request's query is validated when it is
    authenticated and read again when it is served; ``dataclasses.replace`` (adding the
    identity) shares this memo, so the second read is a lookup."""

    @property
    def principal(self) -> Mapping[str, str] | None:
        """The fields ``value-from-authentication`` reads, or None when not authenticated."""
        return None if self.identity is None else self.identity.principal

    @property
    def source(self) -> str:
        """The CloudEvent ``source`` of the records this gateway writes."""
        return f"/{self.tenant}/{self.application}/gateways/{self.spec.id}"

    def query(self, settings: GatewaySettings) -> GatewayQuery:
        """The validated query (:func:`~gateway.query.parse_query`); BadRequest when invalid."""
        limits = (settings.max_service_timeout, settings.default_service_timeout)
        query = self._queries.get(limits)
        if query is None:
            query = parse_query(
                self.spec,
                self.pairs,
                tenant=self.tenant,
                application=self.application,
                max_timeout=limits[0],
                default_timeout=limits[1],
            )
            self._queries[limits] = query
        return query
