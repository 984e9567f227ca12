"""Google-style ID tokens made in the test: keys, claims, signed and hand-crafted tokens, and a
clock the test moves by hand."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "client-1.apps.googleusercontent.com"


class FakeClock:
    """Wall and monotonic time that tests move by hand."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def claims(clock: FakeClock, **changes: Any) -> dict[str, Any]:
    """A valid ID token's claims at ``clock``'s time; a change to None removes the claim."""
    base: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "sub": "1234567890",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice",
        "hd": "example.com",
        "iat": int(clock.now) - 10,
        "exp": int(clock.now) + 3600,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def sign(key: RSAKey, payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, payload, key)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_sign(key: RSAKey, header: dict[str, Any], payload: dict[str, Any] | bytes) -> str:
    """A token with exactly ``header`` and ``payload`` (any JSON, even what a JOSE library
    refuses to make), signed RS256 by ``key`` by hand."""
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    private = key.get_op_key("sign")
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"
