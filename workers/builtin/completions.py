"""LangStream's ``ai-chat-completions`` and ``ai-text-completions`` agents, on OpenAI's API and
the other providers of :mod:`workers.builtin.providers`.

For each record the agent renders its Mustache templates (:mod:`sluice.templates`) over the
record's view (``messages[].content`` for chat, ``prompt[]`` for text; a missing field fails the
record), asks the model, and writes the answer to ``completion-field`` (default: the whole value)
of the record that goes on. With ``log-field``, a JSON text of the request (``model``, the
agent's ``options`` and the rendered ``messages``) is written there too; with ``logprobs-field``
(text completions), ``{"tokens": [...], "logprobs": [...]}``. A ``when`` condition that does
not hold lets the record go on unchanged.

The provider is the AI resource of ``configuration.yaml`` named by ``ai-service``, else the
first in LangStream's order (OpenAI, Vertex, Hugging Face, Bedrock, Ollama:
:func:`workers.builtin.providers.choose_resource`). The other providers are called through
:mod:`workers.builtin.providers` (one module each, the same timeout and retry keys); what
follows is OpenAI's. An ``open-ai-configuration`` has ``provider: openai``, the default, with an
optional ``url`` for any OpenAI-compatible server, or ``provider: azure`` with the resource's
``url`` (:func:`openai_resource`). The official ``openai`` client (async) makes the calls; it
retries 429, 5xx and failed connections ``max-retries`` times (respecting ``Retry-After``) and
gives up on a call silent for ``timeout-seconds``. An answer with an error status, a timeout, a
server that cannot be reached or an answer that is not a completion fails the record
(:class:`CompletionError`), so the agent's ``errors`` policy decides; the access key never
appears in a message.

Streaming (``stream: true``, the default): the answer is read piece by piece; with
``stream-to-topic`` the pieces also go to that topic as they arrive, grouped as LangStream groups
them (:class:`workers.builtin.streaming.ChunkGrouper`), each chunk a copy of the input record
with the chunk written to ``stream-response-completion-field`` (default: ``completion-field``)
and the headers ``stream-id`` (the completion's id), ``stream-index`` and
``stream-last-message``. Chunks are written with the worker's topic producer and awaited, so
they arrive in order and a chunk that cannot be written fails the record. Text completions drop
a first piece that is only whitespace, as LangStream did.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import openai

from sluice.application.builtin_config import read_configuration
from sluice.errors import SluiceError
from sluice.expressions import Predicate, compile_predicate
from sluice.record import Record
from sluice.sdk import AgentContext, TopicProducer
from sluice.templates import Template, compile_template
from workers.builtin.providers import (
    AIProvider,
    CompletionRequest,
    Piece,
    ProviderError,
    choose_resource,
    open_provider,
)
from workers.builtin.providers.errors import ResourceError as ResourceError
from workers.builtin.providers.resources import HUGGING_FACE, OPENAI
from workers.builtin.records import (
    WorkingRecord,
    context_of,
    parse_field_name,
    set_field,
    template_view,
    to_record,
    to_working,
)
from workers.builtin.streaming import ChunkGrouper, chunk_record

AZURE_API_VERSION = "2024-06-01"
"""The Azure OpenAI REST API version the agents ask for."""

_OTHER_PROVIDERS_KEYS = frozenset(
    {"secret-key", "api-url", "model-check-url", "region", "project", "token", "serviceAccountJson"}
)
"""Keys of the other AI resources (Hugging Face, Vertex, Bedrock): not an OpenAI resource."""

_PARAMETERS = {
    "max-tokens": "max_tokens",
    "temperature": "temperature",
    "top-p": "top_p",
    "presence-penalty": "presence_penalty",
    "frequency-penalty": "frequency_penalty",
    "logit-bias": "logit_bias",
    "user": "user",
    "stop": "stop",
}
"""Agent key -> OpenAI request parameter (sent only when set)."""


class CompletionError(ProviderError):
    """A completion the provider did not give: an error status, a timeout, a server that cannot
    be reached, an answer that is not a completion. The record fails (``errors`` policy)."""


@dataclass(frozen=True)
class OpenAIResource:
    """An ``open-ai-configuration`` resource: its id, ``provider``, ``url`` and key."""

    id: str
    provider: str
    url: str | None
    access_key: str

    @property
    def where(self) -> str:
        """How messages name the provider (never with the key)."""
        # Without a url the openai client reads OPENAI_BASE_URL, as everywhere it is used.
        url = self.url or os.environ.get("OPENAI_BASE_URL") or "api.openai.com"
        return f'{self.provider} resource "{self.id}" ({url})'


def _looks_like_openai(configuration: Any) -> bool:
    return (
        isinstance(configuration, dict)
        and configuration.get("provider", "openai") in ("openai", "azure")
        and "access-key" in configuration
        and not _OTHER_PROVIDERS_KEYS & configuration.keys()
    )


def openai_resource(agent_type: str, config: dict[str, Any]) -> OpenAIResource:
    """The OpenAI resource of an agent: ``ai-service``'s, else the first OpenAI one.

    ``config["resources"]`` maps resource ids to their configuration and
    ``config["resource-types"]`` ids to their type (the worker adds both). Without
    ``ai-service`` the first ``open-ai-configuration`` is taken, as LangStream took OpenAI first;
    where the types are not given (an agent made by hand), the first resource shaped as one (an
    ``access-key``, ``provider`` openai or azure, none of the other providers' keys). Raises
    :class:`ResourceError` naming the resource and what it lacks.
    """
    resources = config.get("resources") or {}
    types = config.get("resource-types") or {}
    service = config.get("ai-service")
    if service:
        if service not in resources:
            known = ", ".join(sorted(resources)) or "none"
            raise ResourceError(
                f'{agent_type}: ai-service "{service}" is not a resource of the application '
                f"(resources: {known})"
            )
        kind = types.get(service)
        if kind is not None and kind != "open-ai-configuration":
            raise ResourceError(
                f'{agent_type}: ai-service "{service}" is a {kind}; Sluice runs {agent_type} on '
                "open-ai-configuration resources so far"
            )
        ident, conf = str(service), resources[service]
    else:
        found = [
            (i, c)
            for i, c in resources.items()
            if (types.get(i) == "open-ai-configuration" if types else _looks_like_openai(c))
        ]
        if not found:
            raise ResourceError(
                f"{agent_type}: no open-ai-configuration resource in configuration.yaml "
                "(add one with an access-key, or name it with ai-service)"
            )
        ident, conf = str(found[0][0]), found[0][1]
    conf = conf if isinstance(conf, dict) else {}
    provider = str(conf.get("provider") or "openai")
    if provider not in ("openai", "azure"):
        raise ResourceError(
            f'{agent_type}: resource "{ident}" has provider {provider!r}; '
            "open-ai-configuration takes openai or azure"
        )
    key = conf.get("access-key")
    if not isinstance(key, str) or not key.strip():
        raise ResourceError(f'{agent_type}: resource "{ident}" has no access-key')
    url = conf.get("url")
    url = str(url) if url else None
    if provider == "azure" and url is None:
        raise ResourceError(f'{agent_type}: resource "{ident}" (provider azure) has no url')
    return OpenAIResource(ident, provider, url, key)


def provider_failure(agent_type: str, resource: OpenAIResource, what: str) -> CompletionError:
    """The failure of a call to ``resource``, naming it, never with its key."""
    message = f"{agent_type}: {resource.where} {what}"
    return CompletionError(message.replace(resource.access_key, "***"))


@contextlib.contextmanager
def provider_errors(
    agent_type: str, resource: OpenAIResource, timeout: float, answer: str
) -> Iterator[None]:
    """The openai client's errors inside the block as :class:`CompletionError`: an error status,
    a timeout, a server that cannot be reached, or an answer that is not ``answer``."""
    try:
        yield
    except openai.APIStatusError as error:
        what = f"answered {error.status_code}: {error.message}"
        raise provider_failure(agent_type, resource, what) from None
    except openai.APITimeoutError:
        what = f"did not answer within {timeout:g}s"
        raise provider_failure(agent_type, resource, what) from None
    except openai.APIConnectionError as error:
        what = f"cannot be reached: {error.__cause__ or error}"
        raise provider_failure(agent_type, resource, what) from None
    except (openai.OpenAIError, AttributeError, TypeError, LookupError, ValueError) as error:
        if isinstance(error, SluiceError):
            raise
        what = f"gave an answer that is not {answer} ({type(error).__name__}: {error})"
        raise provider_failure(agent_type, resource, what) from None


def openai_client(resource: OpenAIResource, *, timeout: float, max_retries: int) -> Any:
    """The async client of ``resource`` (Azure's for ``provider: azure``)."""
    if resource.provider == "azure":
        return openai.AsyncAzureOpenAI(
            api_key=resource.access_key,
            azure_endpoint=resource.url or "",
            api_version=AZURE_API_VERSION,
            timeout=timeout,
            max_retries=max_retries,
        )
    return openai.AsyncOpenAI(
        api_key=resource.access_key,
        base_url=resource.url,
        timeout=timeout,
        max_retries=max_retries,
    )


class Completions:
    """What both agents share: configuration, resource, client, fields, streaming."""

    agent_type: ClassVar[str]
    producer: TopicProducer | None = None
    when: Predicate | None = None
    _client: Any = None
    provider: AIProvider | None = None

    def use_context(self, context: AgentContext) -> None:
        self.producer = context.get_topic_producer()

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(self.agent_type, config)
        self.config = checked
        self.timeout = float(checked["timeout-seconds"])
        self.max_retries: int = checked["max-retries"]
        chosen = choose_resource(self.agent_type, {**config, **checked})
        if chosen.type == OPENAI:
            named = {**config, **checked, "ai-service": chosen.id}
            self.resource = openai_resource(self.agent_type, named)
        elif chosen.type == HUGGING_FACE and chosen.hugging_face_provider == "local":
            raise ResourceError(
                f'{self.agent_type}: resource "{chosen.id}" (hugging-face-configuration, '
                "provider local) runs only compute-ai-embeddings; completions need provider api"
            )
        else:
            self.provider = open_provider(
                self.agent_type,
                chosen,
                timeout=self.timeout,
                max_retries=self.max_retries,
                options=checked["options"],
            )
        when = checked["when"]
        self.when = None if when is None else compile_predicate(when)
        self.model: str = checked["model"]
        self.completion_field: str | None = checked["completion-field"]
        self.log_field: str | None = checked["log-field"]
        self.stream_topic: str | None = checked["stream-to-topic"] or None
        self.stream_field = checked["stream-response-completion-field"] or self.completion_field
        for name in (self.completion_field, self.log_field, self.stream_field):
            if name is not None:
                parse_field_name(name)
        self.streaming: bool = checked["stream"]
        self.chunk_limit: int = checked["min-chunks-per-message"]
        self.parameters: dict[str, Any] = {}
        for key, parameter in _PARAMETERS.items():
            value = checked[key]
            if value is None:
                continue
            if key in ("temperature", "top-p", "presence-penalty", "frequency-penalty"):
                value = float(value)
            elif key == "stop":
                value = list(value)
            self.parameters[parameter] = value
        self.request = CompletionRequest(
            model=self.model,
            parameters={key: checked[key] for key in _PARAMETERS if checked[key] is not None},
            options=checked["options"] or {},
            stream=self.streaming,
        )
        self.configure(checked)

    def configure(self, checked: dict[str, Any]) -> None:
        """Read the agent's own keys (its templates)."""
        raise NotImplementedError

    async def start(self) -> None:
        if self.provider is not None:
            return
        self._client = openai_client(
            self.resource, timeout=self.timeout, max_retries=self.max_retries
        )

    async def close(self) -> None:
        if self.provider is not None:
            await self.provider.aclose()
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise CompletionError(f"{self.agent_type} called before start()")
        return self._client

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        if self.when is not None and not self.when.test(context_of(working)):
            return [to_record(working, record)]
        rendered = self.render(template_view(working))
        routed: list[Record] = []
        if self.provider is not None:
            answer, extra = await self.from_provider(
                self.provider, rendered, working, record, routed
            )
        else:
            with provider_errors(self.agent_type, self.resource, self.timeout, "a completion"):
                answer, extra = await self.complete(rendered, working, record, routed)
        set_field(working, answer, self.completion_field)
        if self.log_field is not None:
            set_field(working, self.log_text(rendered), self.log_field)
        self.write_extra(working, extra)
        return [*routed, to_record(working, record)]

    def log_text(self, rendered: list[Any]) -> str:
        """LangStream's log of a request: the model, the agent's options, what was sent."""
        options = {"type": self.agent_type, **self.config}
        log_entry = {"model": self.model, "options": options, "messages": rendered}
        return json.dumps(log_entry, ensure_ascii=False, default=str)

    def render(self, view: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    async def complete(
        self, rendered: list[Any], working: WorkingRecord, record: Record, routed: list[Record]
    ) -> tuple[str, Any]:
        raise NotImplementedError

    def write_extra(self, working: WorkingRecord, extra: Any) -> None:
        """Write what the answer brought besides its text (text completions' log probs)."""

    def pieces(self, provider: AIProvider, rendered: list[Any]) -> AsyncGenerator[Piece, None]:
        """The answer of a provider other than OpenAI, piece by piece."""
        raise NotImplementedError

    async def from_provider(
        self,
        provider: AIProvider,
        rendered: list[Any],
        working: WorkingRecord,
        record: Record,
        routed: list[Record],
    ) -> tuple[str, Any]:
        """The answer of a provider other than OpenAI, its pieces grouped into chunks as
        OpenAI's are; its failures as :class:`CompletionError`."""
        grouper = ChunkGrouper(self.chunk_limit)
        try:
            async with contextlib.aclosing(self.pieces(provider, rendered)) as pieces:
                async for piece in pieces:
                    chunk = grouper.add(piece.text, piece.last)
                    if self.streaming:
                        await self.emit(chunk, piece.stream_id, working, record, routed)
                    if piece.last:
                        break
        except ProviderError as error:
            if isinstance(error, CompletionError):
                raise
            raise CompletionError(str(error)) from None
        return grouper.answer, ([], [])

    async def emit(
        self,
        chunk: tuple[int, str, bool] | None,
        stream_id: str,
        working: WorkingRecord,
        record: Record,
        routed: list[Record],
    ) -> None:
        """Write one chunk record to ``stream-to-topic`` (awaited, so chunks stay in order)."""
        if chunk is None or self.stream_topic is None:
            return
        out = chunk_record(
            working, record, chunk, stream_id=stream_id, field_name=self.stream_field
        )
        if self.producer is None:
            routed.append(out.to(self.stream_topic))
        else:
            await self.producer.awrite(self.stream_topic, out)


class ChatCompletions(Completions):
    """The ``ai-chat-completions`` processor (see the module's documentation)."""

    agent_type = "ai-chat-completions"

    def configure(self, checked: dict[str, Any]) -> None:
        # LangStream's 0.0.x syntax {{% name}} is rewritten to {{ name}} in chat messages.
        self.messages: list[tuple[str, Template]] = [
            (m["role"], compile_template(m["content"].replace("{{%", "{{")))
            for m in checked["messages"]
        ]

    def render(self, view: dict[str, Any]) -> list[Any]:
        return [
            {"role": role, "content": template.render(view)} for role, template in self.messages
        ]

    def pieces(self, provider: AIProvider, rendered: list[Any]) -> AsyncGenerator[Piece, None]:
        return provider.chat(rendered, self.request)

    async def complete(
        self, rendered: list[Any], working: WorkingRecord, record: Record, routed: list[Record]
    ) -> tuple[str, Any]:
        completions = self.client.chat.completions
        request = {"model": self.model, "messages": rendered, **self.parameters}
        if not self.streaming:
            response = await completions.create(**request)
            content = response.choices[0].message.content
            return ("" if content is None else str(content)), None
        stream = await completions.create(**request, stream=True)
        grouper = ChunkGrouper(self.chunk_limit)
        stream_id, done = "", False
        async for event in stream:
            if done or not event.choices:
                continue
            stream_id = stream_id or str(event.id)
            choice = event.choices[0]
            piece = (choice.delta.content if choice.delta is not None else None) or ""
            done = choice.finish_reason is not None
            await self.emit(grouper.add(piece, done), stream_id, working, record, routed)
        if not stream_id:
            raise ValueError("the stream held no completion")
        if not done:
            await self.emit(grouper.add("", last=True), stream_id, working, record, routed)
        return grouper.answer, None


class TextCompletions(Completions):
    """The ``ai-text-completions`` processor (see the module's documentation)."""

    agent_type = "ai-text-completions"

    def configure(self, checked: dict[str, Any]) -> None:
        self.prompt = [compile_template(text) for text in checked["prompt"]]
        self.logprobs: int | None = checked["logprobs"]
        self.logprobs_field: str | None = checked["logprobs-field"]
        if self.logprobs_field is not None:
            parse_field_name(self.logprobs_field)
        if self.logprobs is not None:
            self.parameters["logprobs"] = self.logprobs

    def render(self, view: dict[str, Any]) -> list[Any]:
        return [template.render(view) for template in self.prompt]

    def pieces(self, provider: AIProvider, rendered: list[Any]) -> AsyncGenerator[Piece, None]:
        return provider.text(rendered, self.request)

    async def complete(
        self, rendered: list[Any], working: WorkingRecord, record: Record, routed: list[Record]
    ) -> tuple[str, Any]:
        completions = self.client.completions
        request = {"model": self.model, "prompt": rendered, **self.parameters}
        tokens: list[str] = []
        logprobs: list[float | None] = []
        if not self.streaming:
            response = await completions.create(**request)
            choice = response.choices[0]
            _collect(choice, tokens, logprobs)
            return str(choice.text or ""), (tokens, logprobs)
        stream = await completions.create(**request, stream=True)
        grouper = ChunkGrouper(self.chunk_limit)
        stream_id, done, first = "", False, True
        async for event in stream:
            choices = [c for c in event.choices or () if c.index == 0]
            if done or not choices:
                continue
            stream_id = stream_id or str(event.id)
            choice = choices[0]
            piece = choice.text or ""
            if first:
                first = False
                if not piece.strip():
                    piece = ""  # LangStream drops a blank first piece ("\n\n")
            _collect(choice, tokens, logprobs)
            done = choice.finish_reason is not None
            await self.emit(grouper.add(piece, done), stream_id, working, record, routed)
        if not stream_id:
            raise ValueError("the stream held no completion")
        if not done:
            await self.emit(grouper.add("", last=True), stream_id, working, record, routed)
        return grouper.answer, (tokens, logprobs)

    def write_extra(self, working: WorkingRecord, extra: Any) -> None:
        if self.logprobs_field is not None:
            tokens, logprobs = extra
            set_field(working, {"tokens": tokens, "logprobs": logprobs}, self.logprobs_field)


def _collect(choice: Any, tokens: list[str], logprobs: list[float | None]) -> None:
    found = getattr(choice, "logprobs", None)
    if found is not None:
        tokens.extend(found.tokens or ())
        logprobs.extend(found.token_logprobs or ())
