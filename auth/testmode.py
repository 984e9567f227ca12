"""Test mode (docs/auth.md): ``test-credentials`` give a principal derived from the token.

The server's own test provider checks the token first; the principal is then built from its
sha256 so that a test client cannot choose who it is, and two test tokens never collide.
"""

from __future__ import annotations

from auth.provider import Identity
from auth.tokens import fingerprint

__all__ = ["test_identity"]


def test_identity(token: str, checked: Identity) -> Identity:
    """The principal of test credentials ``token`` that the test provider accepted as
    ``checked`` (whose expiry is kept)."""
    sha = fingerprint(token)
    principal = {
        "subject": sha,
        "email": f"{sha}@localhost",
        "name": sha,
        "login": sha,
        "id": sha,
    }
    return Identity(principal, expires_at=checked.expires_at)
