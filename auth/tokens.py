"""Checks every provider makes before a token goes anywhere."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from auth.provider import AuthenticationFailed

__all__ = ["MAX_TOKEN_LENGTH", "check_token", "fingerprint"]

MAX_TOKEN_LENGTH: Final = 8192
"""Longest token accepted; real ID tokens and GitHub tokens are far shorter."""

# RFC 6750 b64token: what may appear after "Bearer ".
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def check_token(token: str) -> str:
    """``token`` when it has the shape of a bearer token, else :class:`AuthenticationFailed`.

    Catches empty, oversized, whitespace-carrying and non-ASCII tokens without asking anyone.
    """
    if not token:
        raise AuthenticationFailed("the credentials are empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed(f"the credentials are longer than {MAX_TOKEN_LENGTH} characters")
    if _B64TOKEN.fullmatch(token) is None:
        raise AuthenticationFailed("the credentials contain characters a bearer token cannot have")
    return token


def fingerprint(token: str) -> str:
    """The sha256 hex digest of ``token``: what caches key on and test mode derives from."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
