"""Verifying signed JWTs (the ``google`` and ``jwt`` providers), cheapest checks first.

A token goes through, in order: its shape (:func:`~auth.tokens.check_token`), its header and
claims read without trusting them (:func:`inspect`, :func:`check_claims`; no network, so a
malformed, expired or misaddressed token never makes anyone fetch keys), the issuer's key for its
``kid`` (a :class:`KeySource`, usually a :class:`~auth.jwks.JwksCache`), and finally the signature
with joserfc. Every failure is an :class:`~auth.provider.AuthenticationFailed` whose reason names
what was wrong, never the token.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

from auth.clock import SYSTEM_CLOCK, Clock
from auth.jwks import KeySnapshot
from auth.provider import AuthenticationFailed
from auth.tokens import check_token

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "SYMMETRIC_ALGORITHMS",
    "ClaimRules",
    "JwtVerifier",
    "KeySource",
    "StaticKey",
    "Unverified",
    "check_claims",
    "expiry",
    "inspect",
    "verify_signature",
]

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
SYMMETRIC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})

MAX_HEADER_LENGTH: Final = 512
"""Longest encoded header accepted (joserfc's own limit)."""

LEEWAY: Final = 60
"""Clock skew tolerated on ``exp``, ``iat`` and ``nbf``, in seconds."""

# Headers that point at key material chosen by whoever made the token.
_KEY_POINTERS: Final = ("jku", "x5u", "jwk")


@dataclass(frozen=True)
class Unverified:
    """A token's header and claims, decoded but not yet trusted."""

    alg: str
    kid: str | None
    header: Mapping[str, Any]
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class ClaimRules:
    """What the claims must say. Empty ``issuers`` / ``audiences`` are not checked;
    ``essential`` claims must be present."""

    issuers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    essential: tuple[str, ...] = ("exp",)
    leeway: int = LEEWAY


def _fail(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(reason)


def _json_object(segment: str, part: str) -> dict[str, Any]:
    try:
        value = json.loads(urlsafe_b64decode(segment.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        raise _fail(f"the token's {part} is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise _fail(f"the token's {part} is not a JSON object")
    return value


def inspect(token: str, algorithms: Collection[str], *, require_kid: bool) -> Unverified:
    """The header and claims of ``token`` when its header is acceptable; no signature check.

    Refuses a token that is not three segments, an unsigned one, a header over 512 bytes, an
    algorithm outside ``algorithms`` (``none`` never is one), a non-string or (with
    ``require_kid``) missing ``kid``, ``jku``/``x5u``/``jwk`` key pointers and ``crit``/``b64``
    extensions, none of which Sluice implements.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise _fail("the token is not a JWT (three dot-separated segments)")
    header_segment, payload_segment, signature_segment = parts
    if not signature_segment:
        raise _fail("the token is not signed")
    if len(header_segment) > MAX_HEADER_LENGTH:
        raise _fail(f"the token's header is longer than {MAX_HEADER_LENGTH} bytes")
    header = _json_object(header_segment, "header")
    claims = _json_object(payload_segment, "payload")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _fail("the token's header has no algorithm (alg)")
    if alg not in algorithms:
        raise _fail(f"the token's algorithm is not one of {', '.join(sorted(algorithms))}")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _fail("the token's key id (kid) is not a string")
    if kid is None and require_kid:
        raise _fail("the token's header has no key id (kid)")
    for name in _KEY_POINTERS:
        if name in header:
            raise _fail(f"the token's header carries {name!r}; keys come only from the issuer")
    if "crit" in header or "b64" in header:
        raise _fail("the token's header uses extensions (crit, b64) that are not supported")
    return Unverified(alg, kid, header, claims)


def check_claims(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> None:
    """Raise :class:`AuthenticationFailed` unless ``claims`` satisfy ``rules`` at ``now``.

    ``exp``, ``iat`` and ``nbf`` must be finite numbers when present; ``exp`` is expired once
    ``exp <= now - leeway``; ``iat`` and ``nbf`` may not be later than ``now + leeway``; ``iss``
    and ``sub`` must be strings; ``aud`` a string or a list of strings, one of them ours.
    """
    options: dict[str, jwt.ClaimsOption] = {name: {"essential": True} for name in rules.essential}
    if rules.issuers:
        options["iss"] = {"essential": True, "values": list(rules.issuers)}
    if rules.audiences:
        options["aud"] = {"essential": True, "values": list(rules.audiences)}
    registry = jwt.JWTClaimsRegistry(now=int(now), leeway=rules.leeway, **options)
    try:
        registry.validate(dict(claims))
    except ExpiredTokenError:
        raise _fail("the token has expired") from None
    except MissingClaimError as error:
        raise _fail(f"the token has no {error.claim!r} claim") from None
    except ClaimError as error:
        raise _fail(f"the token's {error.claim!r} claim is not acceptable") from None
    except (JoseError, ValueError, TypeError, OverflowError):
        raise _fail("the token's claims are malformed") from None


def expiry(claims: Mapping[str, Any]) -> float | None:
    """``exp`` as a float; an absurdly large one is capped rather than overflowing."""
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(min(exp, 2**53))
    return None


def verify_signature(token: str, key: Key, alg: str) -> dict[str, Any]:
    """The claims of ``token`` once its signature by ``key`` with ``alg`` is checked."""
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    try:
        return jwt.decode(token, key, algorithms=[alg], registry=registry).claims
    except BadSignatureError:
        raise _fail("the token's signature is invalid") from None
    except (JoseError, ValueError, TypeError, KeyError):
        raise _fail("the token could not be verified") from None


class KeySource(Protocol):
    """Where a verifier finds the key for a token's ``kid`` and ``alg``."""

    async def find(self, kid: str | None, alg: str) -> Key | None: ...

    async def aclose(self) -> None: ...


class StaticKey:
    """One configured key (``publicKey`` or ``secretKey``): the ``kid`` does not matter."""

    def __init__(self, key: Key) -> None:
        self._keys = KeySnapshot((key,))

    async def find(self, kid: str | None, alg: str) -> Key | None:
        return self._keys.find(None, alg)

    async def aclose(self) -> None:
        pass


class JwtVerifier:
    """Checks tokens signed with a key from ``keys`` by one of ``algorithms``."""

    def __init__(
        self,
        keys: KeySource,
        *,
        algorithms: Collection[str],
        rules: ClaimRules,
        require_kid: bool,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.keys = keys
        self.algorithms = frozenset(algorithms)
        self.rules = rules
        self.require_kid = require_kid
        self._clock = clock

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``.

        Raises :class:`AuthenticationFailed`, or :class:`~auth.provider.ProviderUnavailable`
        when the issuer's keys cannot be fetched.
        """
        check_token(token)
        unverified = inspect(token, self.algorithms, require_kid=self.require_kid)
        check_claims(unverified.claims, self.rules, self._clock.time())
        key = await self.keys.find(unverified.kid, unverified.alg)
        if key is None:
            raise _fail("no signing key of the issuer matches the token's key id (kid)")
        return verify_signature(token, key, unverified.alg)

    async def aclose(self) -> None:
        await self.keys.aclose()
