"""A fake of Amazon Bedrock's runtime ``InvokeModel``: a real HTTP server on loopback (a
``bedrock-configuration``'s ``endpoint-override``).

``POST /model/<model>/invoke`` must carry an AWS Signature Version 4 ``Authorization`` for
service ``bedrock`` made with a key pair of :attr:`FakeBedrock.keys`: the fake recomputes the
signature from the request as AWS documents it (canonical request, string to sign, signing
key) and answers 403 ``{"message": "The request signature we calculated does not match..."}``
otherwise. The answer depends on the model family, as Bedrock's models answer:
``amazon.titan-embed-*`` ``{"inputText"}`` -> ``{"embedding", "inputTextTokenCount"}``;
``anthropic.*`` ``{"prompt", ...}`` -> ``{"completion": " <reply>", "stop_reason"}``;
``ai21.*`` -> ``{"completions": [{"data": {"text": "\\n<reply>"}}]}``; ``amazon.titan-text-*``
``{"inputText"}`` -> ``{"results": [{"outputText": <reply>}]}``. Unknown models get 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.provider_server import FakeProvider, Handler, Recorded, fake_embedding

__all__ = ["FakeBedrock", "echo", "verify_sigv4"]

INVOKE = re.compile(r"/model/(?P<model>[^/]+)/invoke")
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def echo(prompt: str) -> str:
    return f"Fake answer to: {prompt}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify_sigv4(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    secret: str,
    region: str,
    service: str = "bedrock",
) -> str | None:
    """Why the request's SigV4 signature is wrong, or None when it is right (AWS's documented
    computation: the canonical query string is the parameters URI-encoded, sorted by name)."""
    found = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if found is None:
        return "missing or malformed Authorization"
    if (found["region"], found["service"]) != (region, service):
        return f"credential scope {found['region']}/{found['service']}"
    if headers.get("x-amz-content-sha256", hashlib.sha256(body).hexdigest()) != (
        hashlib.sha256(body).hexdigest()
    ):
        return "payload hash"
    signed = found["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "host and x-amz-date must be signed"
    path, _, raw_query = raw_path.partition("?")
    query = "&".join(
        f"{urllib.parse.quote(name, safe='-_.~')}={urllib.parse.quote(value, safe='-_.~')}"
        for name, value in sorted(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            query,
            "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
            found["signed"],
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{found['date']}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers["x-amz-date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret}".encode(), found["date"])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, found["signature"]) else "signature"


@dataclass
class FakeBedrock(FakeProvider):
    reply: Callable[[str], str] = echo
    keys: dict[str, str] = field(default_factory=lambda: {"AKIAFAKE": "fake-secret-key"})
    region: str = "us-east-1"

    def resource(self, access: str = "AKIAFAKE") -> dict[str, str]:
        """A ``bedrock-configuration`` pointing here."""
        return {
            "access-key": access,
            "secret-key": self.keys.get(access, "wrong"),
            "region": self.region,
            "endpoint-override": self.url,
        }

    def answer(self, handler: Handler, request: Recorded) -> None:
        found = INVOKE.fullmatch(request.path.split("?")[0])
        if request.method != "POST" or found is None:
            super().answer(handler, request)
            return
        headers = {name.lower(): value for name, value in request.headers.items()}
        key = re.search(r"Credential=([^/]+)/", headers.get("authorization", ""))
        secret = self.keys.get(key.group(1)) if key else None
        problem = "unknown access key" if secret is None else None
        if secret is not None:
            problem = verify_sigv4(
                "POST", request.path, headers, handler.raw_body, secret, self.region
            )
        if problem is not None:
            message = (
                "The request signature we calculated does not match the signature you "
                f"provided ({problem})"
            )
            handler.send_json(403, {"message": message}, {"x-amzn-ErrorType": "Forbidden"})
            return
        model = urllib.parse.unquote(found["model"])
        body: dict[str, Any] = request.body
        if model.startswith("amazon.titan-embed"):
            text = str(body["inputText"])
            answer: Any = {"embedding": fake_embedding(text), "inputTextTokenCount": 2}
        elif model.startswith("anthropic."):
            answer = {"completion": " " + self.reply(body["prompt"]), "stop_reason": "stop"}
        elif model.startswith("ai21."):
            answer = {"completions": [{"data": {"text": "\n" + self.reply(body["prompt"])}}]}
        elif model.startswith("amazon.titan-text"):
            answer = {"results": [{"outputText": self.reply(body["inputText"])}]}
        else:
            handler.send_json(404, {"message": f"Could not resolve the model {model}"})
            return
        handler.send_json(200, answer)
