"""A fake of Vertex AI's ``predict`` endpoints and of Google's OAuth token endpoint: a real HTTP
server on loopback.

``POST /v1/projects/<project>/locations/<region>/publishers/google/models/<model>:predict``
takes a bearer token (401 otherwise; :attr:`FakeVertex.tokens` are the ones it accepts) and
answers by the shape of ``instances``: chat (``messages``) with one prediction holding one
candidate ``{"author": "bot", "content": reply(messages)}``; text (``prompt``) with
``{"content": reply(...)}``; embeddings (``content``) with ``{"embeddings": {"values":
fake_embedding(content), "statistics": {...}}}`` per instance.

``POST /token`` is a service account's ``token_uri``: it takes the JWT-bearer grant
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``), checks the JWT's
signature with the public key of :func:`service_account_json`'s key, its audience (Google's token endpoint) and scope,
and answers ``{"access_token", "expires_in", "token_type"}`` with a new token it then accepts.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.provider_server import FakeProvider, Handler, Recorded, fake_embedding

__all__ = ["FakeVertex", "echo"]

PREDICT = re.compile(
    r"/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):predict"
)
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"


def echo(texts: list[str]) -> str:
    return f"Fake answer to: {' | '.join(texts)}"


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeVertex(FakeProvider):
    reply: Callable[[list[str]], str] = echo
    tokens: set[str] = field(default_factory=lambda: {"ya29.fake-static-token"})
    expires_in: int = 3600
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def service_account_json(
        self, email: str = "sluice@fake-project.iam.gserviceaccount.com"
    ) -> str:
        """A service account key whose ``token_uri`` is this server's ``/token``."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "fake-project",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": email,
                "client_id": "1",
                "token_uri": f"{self.url}/token",
            }
        )

    def answer(self, handler: Handler, request: Recorded) -> None:
        if request.method == "POST" and request.path == "/token":
            self._token(handler, request)
            return
        found = PREDICT.fullmatch(request.path)
        if request.method != "POST" or found is None:
            super().answer(handler, request)
            return
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            status = {"code": 401, "status": "UNAUTHENTICATED"}
            handler.send_json(401, {"error": {**status, "message": "invalid credentials"}})
            return
        instances = request.body["instances"]
        first = instances[0]
        if "messages" in first:
            texts = [m["content"] for m in first["messages"]]
            candidate = {"author": "bot", "content": self.reply(texts)}
            handler.send_json(200, {"predictions": [{"candidates": [candidate]}]})
        elif "prompt" in first:
            handler.send_json(200, {"predictions": [{"content": self.reply([first["prompt"]])}]})
        else:
            predictions = [
                {
                    "embeddings": {
                        "values": fake_embedding(i["content"]),
                        "statistics": {"truncated": False, "token_count": 2},
                    }
                }
                for i in instances
            ]
            handler.send_json(200, {"predictions": predictions})

    def _token(self, handler: Handler, request: Recorded) -> None:
        form = dict(urllib.parse.parse_qsl(str(request.body)))
        try:
            if form.get("grant_type") != GRANT:
                raise ValueError("unsupported grant_type")
            head, payload, signature = form["assertion"].split(".")
            self._key.public_key().verify(
                _unb64(signature),
                f"{head}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims: dict[str, Any] = json.loads(_unb64(payload))
            # Google's documented audience is its own token endpoint, whatever token_uri is.
            if claims.get("aud") not in (GOOGLE_TOKEN, f"{self.url}/token"):
                raise ValueError(f"wrong audience {claims.get('aud')!r}")
            if "https://www.googleapis.com/auth/cloud-platform" not in claims.get("scope", ""):
                raise ValueError("scope cloud-platform missing")
            if claims.get("exp", 0) < time.time():
                raise ValueError("expired assertion")
        except Exception as error:  # InvalidSignature too: any refusal is invalid_grant
            handler.send_json(400, {"error": "invalid_grant", "error_description": str(error)})
            return
        token = f"ya29.{uuid.uuid4().hex}"
        self.tokens.add(token)
        answer = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        handler.send_json(200, answer)
