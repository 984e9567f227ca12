"""compute-ai-embeddings batching across records, in a real worker on the real broker.

With ``flush-interval`` the texts of several records go to the provider in one call
(``batch-size`` texts), the outputs still come out in input order, and a worker killed in the
middle of a batch loses no record. The provider is the deterministic OpenAI server
(tests.fakes.openai_server), which records every call, so the batches are seen as they were sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sluice.events import ConsumedRecord
from sluice.kafka import Producer
from sluice.record import Record
from tests.fakes.openai_server import FakeOpenAI, fake_embedding
from tests.workers.conftest import StartWorker, prepare, read_all

pytestmark = pytest.mark.kafka

CONFIGURATION = """
configuration:
  resources:
    - type: open-ai-configuration
      name: local-openai
      configuration:
        url: {url}
        access-key: sk-fake
"""

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: embed
    type: compute-ai-embeddings
    input: {inp}
    output: {out}
    configuration:
      model: text-embedding-ada-002
      text: "{{{{ value.text }}}}"
      embeddings-field: value.vector
      batch-size: 4
      flush-interval: {flush}
      concurrency: 2
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def application(
    app_factory: Callable[..., Path], topics: dict[str, str], fake: FakeOpenAI, flush: int
) -> Path:
    files = {
        "pipeline.yaml": PIPELINE.replace("{flush}", str(flush)),
        "configuration.yaml": CONFIGURATION.replace("{url}", fake.base_url),
    }
    return app_factory(files, **topics)


async def send_texts(producer: Producer, topic: str, texts: list[str]) -> None:
    for text in texts:  # one at a time: one key, one partition, this order
        await producer.send(topic, Record(json.dumps({"text": text}), key="k"), source="/test")


def has_texts(texts: list[str]) -> Callable[[list[ConsumedRecord]], bool]:
    """Whether every one of ``texts`` was read (some more than once after a SIGKILL)."""
    return lambda got: set(texts) <= {json.loads(o.record.value)["text"] for o in got}


def embedded_batches(fake: FakeOpenAI) -> list[list[str]]:
    return [list(r.body["input"]) for r in fake.requests if r.path.endswith("/embeddings")]


async def test_texts_of_several_records_go_in_one_call_and_come_out_in_order(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fake: FakeOpenAI,
) -> None:
    app_dir = application(app_factory, topics, fake, flush=1000)
    await prepare(app_dir, kafka_bootstrap)
    texts = [f"sentence number {n}" for n in range(10)]
    await send_texts(producer, topics["inp"], texts)
    worker = await start_worker(app_dir, "embed")
    outputs = await read_all(kafka_bootstrap, topics["out"], 10, within=60, settle=0.5)
    assert await worker.stop() == 0, "\n".join(worker.output)
    values = [json.loads(o.record.value) for o in outputs]
    assert [v["text"] for v in values] == texts, "the input order is kept"
    for value in values:
        assert value["vector"] == fake_embedding(value["text"])
    batches = embedded_batches(fake)
    assert sorted(t for batch in batches for t in batch) == sorted(texts), "each text once"
    assert all(len(batch) <= 4 for batch in batches)
    # Records that were waiting together went together: full batches of four records.
    assert sum(len(batch) == 4 for batch in batches) >= 2, batches


async def test_without_flush_interval_each_record_is_its_own_call(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fake: FakeOpenAI,
) -> None:
    app_dir = application(app_factory, topics, fake, flush=0)
    await prepare(app_dir, kafka_bootstrap)
    texts = [f"text {n}" for n in range(6)]
    await send_texts(producer, topics["inp"], texts)
    worker = await start_worker(app_dir, "embed")
    outputs = await read_all(kafka_bootstrap, topics["out"], 6, within=60, settle=0.5)
    assert await worker.stop() == 0, "\n".join(worker.output)
    assert [json.loads(o.record.value)["text"] for o in outputs] == texts
    assert embedded_batches(fake) == [[text] for text in texts]


async def test_a_worker_killed_in_the_middle_of_a_batch_loses_no_record(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
    fake: FakeOpenAI,
) -> None:
    """SIGKILL once some records of a batch are written and the others not yet (their offsets
    uncommitted): after a restart every input has its output, with its own vector."""
    app_dir = application(app_factory, topics, fake, flush=300)
    await prepare(app_dir, kafka_bootstrap)
    sent: list[str] = []
    for run, kill_after in enumerate((2, 5, 3)):
        texts = [f"run {run} text {n}" for n in range(8)]
        await send_texts(producer, topics["inp"], texts)
        sent += texts
        worker = await start_worker(
            app_dir,
            "embed",
            env={"SLUICE_FAULT_KILL_AFTER": str(kill_after)},
            ready=False,
            instance=fast_instance,
        )
        assert await worker.exited(within=60) == -9, "\n".join(worker.output)
    assert any(len(batch) > 1 for batch in embedded_batches(fake)), "records were batched"
    final = await start_worker(app_dir, "embed", instance=fast_instance)
    outputs = await read_all(
        kafka_bootstrap, topics["out"], len(sent), within=90, until=has_texts(sent)
    )
    assert await final.stop() == 0, "\n".join(final.output)
    values = [json.loads(o.record.value) for o in outputs]
    assert set(sent) <= {v["text"] for v in values}, "an input was lost"
    for value in values:
        assert value["vector"] == fake_embedding(value["text"])
    # Duplicates come only from redelivery; the first copies of each text are in input order.
    firsts = list(dict.fromkeys(v["text"] for v in values))
    assert firsts == sent


async def test_a_window_larger_than_the_unfinished_records_allowed_does_not_stall(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fake: FakeOpenAI,
) -> None:
    """batch-size 300 x concurrency 4 asks for 1,200 records in flight, above the worker's
    1,000 unfinished records: the worker caps its window and goes on."""
    files = {
        "pipeline.yaml": PIPELINE.replace("{flush}", "200")
        .replace("batch-size: 4", "batch-size: 300")
        .replace("concurrency: 2", "concurrency: 4"),
        "configuration.yaml": CONFIGURATION.replace("{url}", fake.base_url),
    }
    app_dir = app_factory(files, **topics)
    await prepare(app_dir, kafka_bootstrap)
    texts = [f"t{n}" for n in range(1200)]
    await asyncio.gather(
        *(
            producer.send(topics["inp"], Record(json.dumps({"text": t}), key="k"), source="/t")
            for t in texts
        )
    )
    worker = await start_worker(app_dir, "embed")
    outputs = await read_all(kafka_bootstrap, topics["out"], len(texts), within=120)
    assert await worker.stop() == 0, "\n".join(worker.output)
    assert len(outputs) == len(texts)
    assert max(len(batch) for batch in embedded_batches(fake)) > 4
