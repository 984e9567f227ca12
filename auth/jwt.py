"""The ``jwt`` provider: tokens of any OpenID Connect / JWT issuer, verified locally.

Configuration (camelCase or kebab-case):

- exactly one key source: ``jwksUri`` (the issuer's JWKS, cached as for Google), ``publicKey``
  (a PEM RSA or EC public key) or ``secretKey`` (a shared HMAC secret of at least 32 bytes);
- ``algorithms``: allowed signature algorithms, default ``RS256, ES256`` (``HS256`` with
  ``secretKey``); public-key and HMAC algorithms cannot be mixed, so a public key can never be
  used as an HMAC secret;
- ``issuer`` / ``audience``: when set, ``iss`` must be one of them and ``aud`` must contain one;
- ``authClaim``: the claim that identifies the user, default ``sub``.

Tokens must carry ``exp``; ``exp``, ``iat`` and ``nbf`` are checked with 60 s of clock skew. The
principal is ``subject`` (the ``authClaim`` value) plus every string claim of the token.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from auth.clock import SYSTEM_CLOCK, Clock
from auth.jwks import JwksCache
from auth.provider import AuthenticationFailed, Identity
from auth.provider_config import ProviderConfig
from auth.verifier import (
    ASYMMETRIC_ALGORITHMS,
    SYMMETRIC_ALGORITHMS,
    ClaimRules,
    JwtVerifier,
    KeySource,
    StaticKey,
    expiry,
)

__all__ = ["MIN_SECRET_BYTES", "JwtProvider", "jwt_principal"]

MIN_SECRET_BYTES = 32
"""Shortest ``secretKey`` accepted: HS256 needs 256 bits to be as strong as its hash."""


def jwt_principal(claims: Mapping[str, Any], auth_claim: str) -> dict[str, str]:
    """``subject`` from ``auth_claim`` plus every string claim of verified ``claims``."""
    subject = claims.get(auth_claim)
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    if not isinstance(subject, str) or not subject:
        raise AuthenticationFailed(f"the token's {auth_claim!r} claim is missing or not a string")
    principal = {name: value for name, value in claims.items() if isinstance(value, str)}
    principal["subject"] = subject
    return principal


def _public_key(config: ProviderConfig, pem: str) -> Key:
    for key_class in (RSAKey, ECKey):
        try:
            key: Key = key_class.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if key.is_private:
            raise config.error("publicKey", "holds a private key; configure its public key")
        return key
    raise config.error("publicKey", "is not a PEM-encoded RSA or EC public key")


def _secret_key(config: ProviderConfig, secret: str) -> Key:
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise config.error("secretKey", f"must be at least {MIN_SECRET_BYTES} bytes long")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SecurityWarning)
            return OctKey.import_key(secret)
    except (JoseError, ValueError, SecurityWarning):
        raise config.error("secretKey", "looks like a PEM key, not a shared secret") from None


def _algorithms(config: ProviderConfig, symmetric: bool) -> tuple[str, ...]:
    default = ("HS256",) if symmetric else ("RS256", "ES256")
    algorithms = config.strings("algorithms", "publicAlg", default=default)
    allowed = SYMMETRIC_ALGORITHMS if symmetric else ASYMMETRIC_ALGORITHMS
    wrong = [alg for alg in algorithms if alg not in allowed]
    if not algorithms or wrong:
        kind = "with secretKey" if symmetric else "with jwksUri or publicKey"
        raise config.error(
            "algorithms", f"must be among {', '.join(sorted(allowed))} {kind}, not {wrong or '[]'}"
        )
    return algorithms


class JwtProvider:
    """Verify JWTs of a configured issuer (see the module documentation)."""

    def __init__(
        self,
        configuration: Mapping[str, Any],
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 5.0,
        jwks_cooldown: float = 60.0,
    ) -> None:
        config = ProviderConfig(configuration, "the jwt authentication provider")
        jwks_uri = config.url("jwksUri", "jwks-uri")
        public_key = config.string("publicKey", "public-key")
        secret_key = config.string("secretKey", "secret-key")
        given = [value for value in (jwks_uri, public_key, secret_key) if value is not None]
        if len(given) != 1:
            raise config.error(
                "jwksUri", "or publicKey or secretKey: exactly one of them must be set"
            )
        algorithms = _algorithms(config, symmetric=secret_key is not None)
        keys: KeySource
        if jwks_uri is not None:
            keys = JwksCache(jwks_uri, clock=clock, timeout=timeout, cooldown=jwks_cooldown)
        elif public_key is not None:
            keys = StaticKey(_public_key(config, public_key))
        else:
            keys = StaticKey(_secret_key(config, secret_key or ""))
        self.auth_claim = config.string("authClaim", "auth-claim", default="sub") or "sub"
        rules = ClaimRules(
            issuers=config.strings("issuer", "issuers"),
            audiences=config.strings("audience", "audiences"),
            essential=("exp", self.auth_claim),
        )
        self._verifier = JwtVerifier(
            keys, algorithms=algorithms, rules=rules, require_kid=False, clock=clock
        )

    async def authenticate(self, token: str) -> Identity:
        claims = await self._verifier.verify(token)
        return Identity(jwt_principal(claims, self.auth_claim), expires_at=expiry(claims))

    async def aclose(self) -> None:
        await self._verifier.aclose()
