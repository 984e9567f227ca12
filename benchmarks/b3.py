"""B3: time to the first chunk of a streamed chat answer through a worker, against the model
server's own time to first token, in the same run.

The model is real and local: Gemma 3 270M (Q4_K_M) served by llama-cpp-python's
OpenAI-compatible server on loopback (built once per machine and started by
``tests/fakes/local_llm.py``; the first build compiles llama.cpp, about 6 minutes on 2 cores).
The subject is LangStream's chat shape: ``ai-chat-completions`` with ``stream-to-topic`` (the
answer's chunks to an answers topic, ``stream-response-completion-field: value``,
``min-chunks-per-message: 20``) through an ``open-ai-configuration`` resource whose ``url`` is
the server, in a real worker process on the local broker. One figure is the time from writing a
question to the input topic (before the producer's send) to the first chunk of its answer read
from the answers topic, by a consumer that was waiting at the topic's end.

The baseline is a direct streaming request to the same server with the same body the agent sends
(the question as the user message, the same ``max_tokens`` and ``temperature``): the time from
sending it to the first server-sent event with text. The agent's first chunk is the first piece
with text too (LangStream's grouping starts at one piece per chunk), so both measure the same
token.

The server answers one request at a time and reuses the longest prompt prefix it evaluated
last, so the order matters: request ``j`` of a repetition asks question ``j mod n`` (``n``
questions, odd) and the variants alternate, so each variant asks each question once, no request
repeats the prompt just before it, and drift hits both alike. Each request is awaited to its end
(the agent's output record, the direct stream's last event) before the next. A warm-up request
on each path is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import percentile, spread
from benchmarks.worker_runs import new_topics, running, worker_argv
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.record import Record

__all__ = ["MAX_TOKENS", "QUESTIONS", "run", "schedule"]

MAX_TOKENS = 16
TARGET = 1.2
EXECUTOR = "chat"
WITHIN = 120.0
"""Seconds one answer may take before the run fails."""

QUESTIONS = (
    "Apache Kafka",
    "a vector database",
    "a consumer group",
    "an embedding model",
    "a dead-letter topic",
    "a WebSocket gateway",
    "stream processing",
    "a language model",
    "a message key",
    "an event loop",
    "a retrieval pipeline",
    "a partition leader",
    "a prompt template",
    "exactly-once delivery",
    "a text splitter",
)

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {answers}, creation-mode: create-if-not-exists}}
pipeline:
  - id: chat
    name: ai-chat-completions
    type: ai-chat-completions
    input: {inp}
    output: {out}
    configuration:
      model: {model}
      messages:
        - role: user
          content: "{{{{ value.question }}}}"
      completion-field: value.answer
      stream-to-topic: {answers}
      stream-response-completion-field: value
      min-chunks-per-message: 20
      max-tokens: {max_tokens}
      temperature: 0
"""
CONFIGURATION = """
configuration:
  resources:
    - type: open-ai-configuration
      name: local model
      configuration:
        url: {url}
        access-key: any
"""


def question(k: int) -> str:
    """Question ``k``: alike in length and shape, different from the first words on."""
    return f"{k + 1}. What is {QUESTIONS[k % len(QUESTIONS)]}, and why would a team use it?"


def schedule(questions: int, repetition: int) -> list[tuple[str, int]]:
    """(variant, question) of each request of a repetition: ``2 * questions`` requests, the
    variants alternating, request ``j`` asking question ``j mod questions``.

    >>> schedule(3, 0)
    [('direct', 0), ('pipeline', 1), ('direct', 2), ('pipeline', 0), ('direct', 1), ('pipeline', 2)]
    """
    if questions < 3 or questions % 2 == 0:
        raise ValueError(f"B3 needs an odd number of questions, at least 3; got {questions}")
    variants = ("direct", "pipeline") if repetition % 2 == 0 else ("pipeline", "direct")
    return [(variants[j % 2], j % questions) for j in range(2 * questions)]


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    question: int
    first_chunk_ms: float
    answer_ms: float


class Direct:
    """Streaming requests straight to the server, as the agent's body."""

    def __init__(self, base_url: str, model: str) -> None:
        self.url = f"{base_url}/chat/completions"
        self.model = model
        self.client = httpx.AsyncClient(trust_env=False, timeout=WITHIN)

    async def ask(self, text: str) -> tuple[float, float]:
        """Seconds to the first event with text, and to the end of the stream."""
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "stream": True,
        }
        started = time.perf_counter()
        first: float | None = None
        async with self.client.stream("POST", self.url, json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                data = line.removeprefix("data:").strip()
                if first is not None or not line.startswith("data:") or data == "[DONE]":
                    continue
                choices = json.loads(data).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter()
        if first is None:
            raise RuntimeError(f"B3: the server streamed no text for {text!r}")
        return first - started, time.perf_counter() - started


class Pipeline:
    """Questions to the worker's input topic; chunks and answers read as they arrive."""

    def __init__(self, bootstrap: str, inp: str, out: str, answers: str) -> None:
        settings = KafkaSettings(bootstrap)
        self.inp, self.out, self.answers = inp, out, answers
        self.producer = Producer(settings)
        self.consumer = Consumer(settings, [TopicSpec(out), TopicSpec(answers)], start_at="end")
        self.asked = 0

    async def __aenter__(self) -> Pipeline:
        await self.producer.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def ask(self, text: str) -> tuple[float, float]:
        """Seconds to the first chunk on the answers topic, and to the answer on the output."""
        self.asked += 1
        key = f"q{self.asked}"
        started = time.perf_counter()
        await self.producer.send(self.inp, Record({"question": text}, key=key), source="/bench")
        first: float | None = None
        deadline = started + WITHIN
        while time.perf_counter() < deadline:
            for item in await self.consumer.poll(timeout_ms=50):
                if not isinstance(item, ConsumedRecord) or item.record.key != key:
                    continue
                now = time.perf_counter()
                if item.topic == self.answers and first is None:
                    first = now
                elif item.topic == self.out:
                    if first is None:
                        raise RuntimeError(f"B3: the answer to {key} came before any chunk")
                    return first - started, now - started
        raise TimeoutError(f"B3: no answer to {key} on {self.out} within {WITHIN:.0f} s")


def _figure(values: list[float]) -> dict[str, float]:
    return {**spread(values), "p90": percentile(values, 0.9)}


async def run(bootstrap: str, *, questions: int, repetitions: int) -> dict[str, object]:
    schedule(questions, 0)  # checks the count before the model is built
    from tests.fakes.local_llm import prepare, running_server

    assets = await asyncio.to_thread(prepare, lambda line: print(f"  {line}", flush=True))
    samples: list[Sample] = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sluice-b3-")))
        server = stack.enter_context(running_server(assets))
        inp, out, answers = await new_topics(bootstrap, "b3", "in", "out", "answers")
        app = work / "app"
        app.mkdir()
        (app / "pipeline.yaml").write_text(
            PIPELINE.format(
                inp=inp, out=out, answers=answers, model=server.model, max_tokens=MAX_TOKENS
            )
        )
        (app / "configuration.yaml").write_text(CONFIGURATION.format(url=server.base_url))
        direct = Direct(server.base_url, server.model)
        log = work / "worker.log"
        argv = worker_argv(app, EXECUTOR, bootstrap, work / "state")
        try:
            async with running(argv, log=log), Pipeline(bootstrap, inp, out, answers) as pipe:
                try:
                    await pipe.ask("Warm up: what is a topic?")
                except (TimeoutError, RuntimeError) as error:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(f"{error}; the worker's output:\n{tail}") from None
                await direct.ask("Warm up: what is a broker?")
                for repetition in range(repetitions):
                    for variant, k in schedule(questions, repetition):
                        ask = direct.ask if variant == "direct" else pipe.ask
                        first, whole = await ask(question(k))
                        samples.append(Sample(variant, repetition, k, first * 1e3, whole * 1e3))
                    print(
                        f"  B3 #{repetition}: "
                        + ", ".join(
                            f"{v} median "
                            + f"{_median_ms(samples, v, repetition):.0f} ms to the first chunk"
                            for v in ("direct", "pipeline")
                        ),
                        flush=True,
                    )
        finally:
            await direct.client.aclose()
    return _result(samples, questions, repetitions, assets.name)


def _median_ms(samples: list[Sample], variant: str, repetition: int | None = None) -> float:
    return statistics.median(
        s.first_chunk_ms
        for s in samples
        if s.variant == variant and repetition in (None, s.repetition)
    )


def _result(
    samples: list[Sample], questions: int, repetitions: int, llama_version: str
) -> dict[str, Any]:
    first = {
        v: [s.first_chunk_ms for s in samples if s.variant == v] for v in ("direct", "pipeline")
    }
    whole = {v: [s.answer_ms for s in samples if s.variant == v] for v in ("direct", "pipeline")}
    pipeline, direct = statistics.median(first["pipeline"]), statistics.median(first["direct"])
    # Each repetition's ratio of medians, then their median: the load of a shared machine
    # drifts between repetitions, and pooled medians can land between its levels.
    per_repetition = [
        _median_ms(samples, "pipeline", r) / _median_ms(samples, "direct", r)
        for r in range(repetitions)
    ]
    ratio = statistics.median(per_repetition)
    return {
        "id": "B3",
        "scenario": "ai-chat-completions with stream-to-topic in a worker on the local model "
        "(Gemma 3 270M Q4_K_M, llama-cpp-python server): question written to the input topic "
        "-> first chunk read from the answers topic",
        "baseline": "the server's own time to first token: a direct streaming request with the "
        "same body (same run, alternating)",
        "model": f"Gemma 3 270M Q4_K_M on llama-cpp-python {llama_version} (2 threads)",
        "questions": questions,
        "repetitions": repetitions,
        "max_tokens": MAX_TOKENS,
        "first_chunk_ms": {v: _figure(first[v]) for v in first},
        "answer_ms": {v: _figure(whole[v]) for v in whole},
        "ratio": ratio,
        "ratio_per_repetition": spread(per_repetition),
        "ratio_of_pooled_medians": pipeline / direct,
        "ratio_p90": percentile(first["pipeline"], 0.9) / percentile(first["direct"], 0.9),
        "added_ms_median": pipeline - direct,
        "target": f"<= {TARGET}x the server's own median time to first token (median of the "
        "repetitions' ratios)",
        "met": ratio <= TARGET,
        "samples": [asdict(s) for s in samples],
    }
