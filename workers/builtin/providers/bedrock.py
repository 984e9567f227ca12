"""Amazon Bedrock (``bedrock-configuration``: ``access-key``, ``secret-key``, ``region``
default ``us-east-1``, ``endpoint-override``), as LangStream called it: the runtime's
``InvokeModel``, ``POST <endpoint>/model/<model>/invoke`` (endpoint default
``https://bedrock-runtime.<region>.amazonaws.com``), signed with AWS Signature Version 4
(service ``bedrock``; httpx-auth's ``AWS4Auth`` signs each try anew).

Completions (chat and text alike): exactly one prompt (for chat, one message), sent as the
body ``{<options.request-prompt-property, default "prompt">: <prompt>,
**options.request-parameters}``; the answer is ``options.response-completions-expression``, a
path into the response's JSON (``completion``, ``completions[0].data.text``,
``results[0].outputText``), with one leading newline removed. The expression is required: the
agent stops at start without it. No streaming: the answer comes whole.

Embeddings (Titan): one call per text, ``{"inputText": <text>}``, answered ``{"embedding":
[...]}``; the model defaults to ``amazon.titan-embed-text-v1`` when the agent keeps
``compute-ai-embeddings``' OpenAI default.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from httpx_auth import AWS4Auth

from sluice.expressions import EvaluationContext, Expression, ExpressionError, compile_expression
from workers.builtin.providers.base import CompletionRequest, Piece
from workers.builtin.providers.client import ProviderClient
from workers.builtin.providers.errors import ResourceError
from workers.builtin.providers.resources import AIResource

__all__ = ["TITAN_EMBEDDINGS", "Bedrock"]

TITAN_EMBEDDINGS = "amazon.titan-embed-text-v1"
_OPENAI_DEFAULT = "text-embedding-ada-002"
_PATH = re.compile(r"[A-Za-z_][\w-]*")


class Bedrock:
    """The :class:`~workers.builtin.providers.base.AIProvider` of a Bedrock resource."""

    def __init__(
        self,
        agent_type: str,
        resource: AIResource,
        *,
        timeout: float,
        max_retries: int,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        access_key = resource.required(agent_type, "access-key")
        secret_key = resource.required(agent_type, "secret-key")
        region = resource.text("region") or "us-east-1"
        default = f"https://bedrock-runtime.{region}.amazonaws.com"
        self.endpoint = (resource.text("endpoint-override") or default).rstrip("/")
        self.client = ProviderClient(
            f'{agent_type}: bedrock resource "{resource.id}" ({self.endpoint})',
            timeout=timeout,
            max_retries=max_retries,
            secrets=[secret_key],
            headers={"Accept": "application/json"},
            auth=AWS4Auth(access_key, secret_key, region, "bedrock"),
        )
        self.answer_path: Expression | None = None
        if agent_type != "compute-ai-embeddings":
            self._read_options(agent_type, resource.id, options or {})

    def _read_options(self, agent_type: str, ident: str, options: Mapping[str, Any]) -> None:
        where = f'{agent_type} on bedrock resource "{ident}": options'
        expression = options.get("response-completions-expression")
        if not isinstance(expression, str) or not _PATH.match(expression.strip()):
            raise ResourceError(
                f"{where}.response-completions-expression is required: a path into the "
                "model's JSON answer, such as completion or completions[0].data.text"
            )
        try:
            self.answer_path = compile_expression(f"record.{expression.strip()}")
        except ExpressionError as error:
            raise ResourceError(f"{where}.response-completions-expression: {error}") from None
        self.prompt_property = str(options.get("request-prompt-property") or "prompt")
        parameters = options.get("request-parameters") or {}
        if not isinstance(parameters, Mapping):
            raise ResourceError(f"{where}.request-parameters must be a mapping")
        self.parameters = dict(parameters)

    def _url(self, model: str) -> str:
        return f"{self.endpoint}/model/{model}/invoke"

    def chat(
        self, messages: list[dict[str, str]], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        return self.text([m["content"] for m in messages], request)

    async def text(
        self, prompts: list[str], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        if len(prompts) != 1:
            raise self.client.failure(
                f"takes exactly one prompt (one message) for completions, got {len(prompts)}"
            )
        body = {self.prompt_property: prompts[0], **self.parameters}
        answer = await self.client.request_json(
            "POST", self._url(request.model), body=body, answer="a completion"
        )
        if self.answer_path is None:
            raise self.client.failure("has no options.response-completions-expression")
        with self.client.calling("a completion"):
            if not isinstance(answer, dict):
                raise TypeError(f"a {type(answer).__name__}, not a JSON object")
            found = self.answer_path.evaluate(EvaluationContext(record=answer))
        if found is None:
            raise self.client.failure(
                "gave no completion at "
                f"{self.answer_path.text.removeprefix('record.')} (answer keys: "
                f"{', '.join(map(str, answer)) or 'none'})"
            )
        text = found if isinstance(found, str) else str(found)
        yield Piece(text.removeprefix("\n"), True, str(uuid.uuid4()))

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        model = TITAN_EMBEDDINGS if model == _OPENAI_DEFAULT else model
        vectors = []
        for text in texts:
            answer = await self.client.request_json(
                "POST", self._url(model), body={"inputText": text}, answer="an embedding"
            )
            with self.client.calling("an embedding"):
                vectors.append([float(number) for number in answer["embedding"]])
        return vectors

    async def aclose(self) -> None:
        await self.client.aclose()
