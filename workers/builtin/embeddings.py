"""LangStream's ``compute-ai-embeddings``: the vector of a text from the record, written back.

``text`` is a Mustache template rendered over the record (LangStream's view: ``value``, ``key``,
``properties``...); its vector, a list of floats, goes to ``embeddings-field`` (the result field
grammar of :func:`workers.builtin.records.set_field`). With ``loop-over`` (an expression giving
a list of JSON objects), the template is rendered for each element as ``{{ record.x }}``, each
element gets its vector at ``embeddings-field: record.<name>``, and the list is written back
where ``loop-over`` points (``value.docs``). An empty list goes on unchanged (LangStream never
completed such a record).

The vectors come from the AI resource ``ai-service`` names, else the first in LangStream's
order (OpenAI, Vertex, Hugging Face, Bedrock, Ollama:
:func:`workers.builtin.providers.choose_resource`): an ``open-ai-configuration`` through the
official client as ``ai-chat-completions`` calls it; a ``hugging-face-configuration`` with
``provider: local`` from the model in the worker, all-MiniLM-L6-v2 on onnxruntime
(:mod:`workers.builtin.embedding_models`), loaded once per worker at ``init`` and run off the
event loop; any other through its provider module (:mod:`workers.builtin.providers`), with
``timeout-seconds`` and ``max-retries``.

Batching is LangStream's: with ``flush-interval`` 0 (the default) each record's texts go to the
model as soon as the record arrives, ``batch-size`` texts per call; with ``flush-interval`` > 0
the texts of several records are gathered (:class:`workers.builtin.batching.Batcher`) into calls
of ``batch-size`` texts, a partial batch leaving ``flush-interval`` milliseconds after its first
text, with up to ``concurrency`` calls at once. The worker then lets ``batch-size`` x
``concurrency`` records into the agent at once (``records_in_flight``) and still writes their
outputs and commits their offsets in input order, so a worker killed in the middle of a batch
loses no record: what was not written is read again.

Configuration and resource problems stop the worker at ``init`` with the key in the message; a
record whose template names a missing field, whose ``loop-over`` is not a list of objects or
whose target cannot be written fails, and the agent's ``errors`` policy decides.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Expression, Predicate, compile_expression, compile_predicate
from sluice.record import Record
from sluice.templates import Template, compile_template
from workers.builtin.batching import Batcher
from workers.builtin.embedding_models import LocalEmbeddingModel, load_model, local_model_name
from workers.builtin.providers import (
    AIProvider,
    AIResource,
    ResourceError,
    choose_resource,
    open_provider,
)
from workers.builtin.providers.resources import HUGGING_FACE, NO_AI_SERVICE, OPENAI
from workers.builtin.records import (
    WorkingRecord,
    context_of,
    set_field,
    template_view,
    to_record,
    to_working,
)
from workers.errors import WorkerError

__all__ = ["AGENT_TYPE", "NO_AI_SERVICE", "ComputeAIEmbeddings", "EmbeddingsError"]

AGENT_TYPE = "compute-ai-embeddings"


class EmbeddingsError(WorkerError, ValueError):
    """``compute-ai-embeddings`` cannot start, or one record cannot be embedded."""


class ComputeAIEmbeddings:
    """``compute-ai-embeddings`` on the local model (see the module docstring)."""

    when: Predicate | None = None
    loop_over: Expression | None = None
    remote: OpenAIEmbeddings | ProviderEmbeddings | None = None
    batcher: Batcher[str, list[float]] | None = None

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(AGENT_TYPE, config)
        when = checked["when"]
        self.when = None if when is None else compile_predicate(when)
        # LangStream 0.0.x's {{% name}} still works in this template (its own rewrite).
        self.text: Template = compile_template(checked["text"].replace("{{%", "{{"))
        self.field: str = checked["embeddings-field"]
        self.loop_over_field: str | None = checked["loop-over"]
        if self.loop_over_field is not None:
            self.loop_over = compile_expression(self.loop_over_field)
            self.element_field = self.field.removeprefix("record.")
        self.batch_size: int = checked["batch-size"]
        self.concurrency: int = checked["concurrency"]
        flush_interval: int = checked["flush-interval"]
        self.batcher = None
        if flush_interval > 0:
            self.batcher = Batcher(
                self._call_model,
                size=self.batch_size,
                interval=flush_interval / 1000,
                concurrency=self.concurrency,
            )
        timeout, retries = float(checked["timeout-seconds"]), checked["max-retries"]
        try:
            chosen = choose_resource(AGENT_TYPE, {**config, "ai-service": checked["ai-service"]})
            if chosen.type == OPENAI:
                named = {**config, "ai-service": chosen.id}
                self.remote = OpenAIEmbeddings(named, checked["model"], timeout, retries)
                return
            if chosen.type != HUGGING_FACE or chosen.hugging_face_provider != "local":
                provider = open_provider(
                    AGENT_TYPE,
                    chosen,
                    timeout=timeout,
                    max_retries=retries,
                    options=checked["options"],
                )
                self.remote = ProviderEmbeddings(provider, chosen, checked["model"])
                return
        except ResourceError as error:
            raise EmbeddingsError(str(error)) from None
        self.remote = None
        try:
            name = local_model_name(checked["model"], checked["model-url"])
        except ValueError as error:
            raise EmbeddingsError(f"{AGENT_TYPE}: {error}") from None
        self.model: LocalEmbeddingModel = await asyncio.to_thread(load_model, name)

    async def start(self) -> None:
        pass

    @property
    def records_in_flight(self) -> int:
        """Records the worker may let in at once: enough to fill ``concurrency`` batches when
        records are batched together, else one."""
        return 1 if self.batcher is None else self.batch_size * self.concurrency

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        if self.remote is not None:
            await self.remote.close()

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        if self.when is None or self.when.test(context_of(working)):
            if self.loop_over is None:
                vectors = await self._embed([self.text.render(template_view(working))])
                set_field(working, vectors[0], self.field)
            else:
                await self._loop_over(working, self.loop_over)
        return [to_record(working, record)]

    async def _loop_over(self, working: WorkingRecord, loop_over: Expression) -> None:
        items = loop_over.evaluate(context_of(working))
        if not isinstance(items, list):
            raise EmbeddingsError(
                f"{AGENT_TYPE}: loop-over {self.loop_over_field!r} must give a list of JSON "
                f"objects, got {type(items).__name__}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise EmbeddingsError(
                    f"{AGENT_TYPE}: element {index} of loop-over {self.loop_over_field!r} is "
                    f"not a JSON object ({type(item).__name__})"
                )
        if not items:
            return  # LangStream never completed such a record; here it goes on unchanged
        texts = [self.text.render({"record": item}) for item in items]
        vectors = await self._embed(texts)
        embedded = [
            {**item, self.element_field: vector}
            for item, vector in zip(items, vectors, strict=True)
        ]
        set_field(working, embedded, self.loop_over_field)  # checked writable at validation

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        """The vectors of ``texts``: with other records' texts when batching across records,
        else ``batch-size`` per model call."""
        if self.batcher is not None:
            return await self.batcher.submit(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._call_model(texts[start : start + self.batch_size]))
        return vectors

    async def _call_model(self, texts: list[str]) -> list[list[float]]:
        """One call to the model: the remote service, or the local model off the event loop."""
        if self.remote is not None:
            return await self.remote.embed(texts)
        return await asyncio.to_thread(self.model.embed, texts)


class OpenAIEmbeddings:
    """Vectors from an ``open-ai-configuration`` resource (OpenAI, Azure, any OpenAI-compatible
    server) with the official client, as ``ai-chat-completions`` calls it: the same resource
    rules, a bounded timeout and retries, errors naming the resource and never its key."""

    def __init__(self, config: dict[str, Any], model: str, timeout: float, retries: int) -> None:
        # Imported here: the openai client is installed with the ai extra, and only an
        # application that embeds through OpenAI needs it.
        from workers.builtin import completions

        self._completions = completions
        self.resource = completions.openai_resource(AGENT_TYPE, config)
        self.model = model
        self.timeout = timeout
        self.client = completions.openai_client(self.resource, timeout=timeout, max_retries=retries)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        with self._completions.provider_errors(
            AGENT_TYPE, self.resource, self.timeout, "a list of embeddings"
        ):
            response = await self.client.embeddings.create(model=self.model, input=texts)
            data = sorted(response.data, key=lambda item: item.index)
            vectors = [[float(number) for number in item.embedding] for item in data]
            if len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
        return vectors

    async def close(self) -> None:
        await self.client.close()


class ProviderEmbeddings:
    """Vectors from another provider's resource (:mod:`workers.builtin.providers`)."""

    def __init__(self, provider: AIProvider, resource: AIResource, model: str) -> None:
        self.provider = provider
        self.resource = resource
        self.model = model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = await self.provider.embed(texts, self.model)
        if len(vectors) != len(texts):
            raise EmbeddingsError(
                f'{AGENT_TYPE}: resource "{self.resource.id}" gave {len(vectors)} vectors for '
                f"{len(texts)} texts"
            )
        return vectors

    async def close(self) -> None:
        await self.provider.aclose()
