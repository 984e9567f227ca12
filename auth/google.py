"""The ``google`` provider: Google ID tokens (OpenID Connect), verified locally.

The token must be signed with RS256 by a key of Google's JWKS (``jwksUri``), be issued by
``accounts.google.com`` or ``https://accounts.google.com`` (or the configured ``issuers``), to
``clientId`` (``aud``; when ``aud`` lists several parties, ``azp`` must be ``clientId`` too), carry
``exp``, ``iat`` and ``sub``, and be within its validity with 60 s of clock skew. With
``hostedDomain`` set, its ``hd`` (the Google Workspace domain) must be one of them.

The principal has ``subject`` (``sub``, the stable user key), and when the token has them
``email``, ``name``, ``locale``, ``email_verified`` (``"true"``/``"false"``) and ``hd``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from auth.clock import SYSTEM_CLOCK, Clock
from auth.jwks import JwksCache
from auth.provider import AuthenticationFailed, Identity
from auth.provider_config import ProviderConfig
from auth.verifier import ClaimRules, JwtVerifier, expiry

__all__ = ["GOOGLE_ISSUERS", "GOOGLE_JWKS_URI", "GoogleProvider", "google_principal"]

GOOGLE_ISSUERS: Final = ("accounts.google.com", "https://accounts.google.com")
GOOGLE_JWKS_URI: Final = "https://www.googleapis.com/oauth2/v3/certs"

_STRING_FIELDS: Final = (("email", "email"), ("name", "name"), ("locale", "locale"), ("hd", "hd"))


def google_principal(claims: Mapping[str, Any]) -> dict[str, str]:
    """The principal of verified Google ID token ``claims``.

    ``email_verified`` is kept only when it is a JSON boolean, so that a filter on it fails closed
    for anything else.
    """
    principal = {"subject": str(claims["sub"])}
    for field, claim in _STRING_FIELDS:
        value = claims.get(claim)
        if isinstance(value, str) and value:
            principal[field] = value
    verified = claims.get("email_verified")
    if isinstance(verified, bool):
        principal["email_verified"] = "true" if verified else "false"
    return principal


class GoogleProvider:
    """Verify Google ID tokens issued to ``clientId``."""

    def __init__(
        self,
        configuration: Mapping[str, Any],
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 5.0,
        jwks_cooldown: float = 60.0,
    ) -> None:
        config = ProviderConfig(configuration, "the google authentication provider")
        self.client_id = config.string("clientId", "client-id", required=True) or ""
        self.hosted_domains = config.strings("hostedDomain", "hosted-domain")
        issuers = config.strings("issuers", default=GOOGLE_ISSUERS)
        if not issuers:
            raise config.error("issuers", "cannot be empty")
        self.jwks = JwksCache(
            config.url("jwksUri", "jwks-uri", default=GOOGLE_JWKS_URI) or "",
            clock=clock,
            timeout=timeout,
            cooldown=jwks_cooldown,
        )
        self._verifier = JwtVerifier(
            self.jwks,
            algorithms=("RS256",),
            rules=ClaimRules(issuers, (self.client_id,), essential=("exp", "iat", "sub")),
            require_kid=True,
            clock=clock,
        )

    async def authenticate(self, token: str) -> Identity:
        claims = await self._verifier.verify(token)
        if isinstance(claims["aud"], list) and claims.get("azp") != self.client_id:
            raise AuthenticationFailed(
                "the token names several audiences and its authorized party (azp) is not ours"
            )
        if self.hosted_domains and claims.get("hd") not in self.hosted_domains:
            raise AuthenticationFailed("the account is not in an allowed hosted domain (hd)")
        return Identity(google_principal(claims), expires_at=expiry(claims))

    async def aclose(self) -> None:
        await self._verifier.aclose()
