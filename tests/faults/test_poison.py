"""Records a worker cannot process, under ``errors: {retries: 2, on-failure: dead-letter}``.

F8: a valid CloudEvent the agent always throws on is retried, then written to
``<input>-deadletter`` with headers saying what failed and where, then committed; its neighbours
flow. F9: the same while every write to the dead-letter topic fails (it does not exist, and the
broker creates no topic by itself): the worker does not commit past the poison however often it
fails and is restarted (as ``sluice run``'s supervisor does), and once the topic is created the
poison is dead-lettered and the stream goes on. F12 (b): bytes written straight to a string
topic that are neither UTF-8 text nor a complete CloudEvent are dead-lettered as they are, at
once.

I1 for the neighbours, I2, I4 (the committed offset never passes a record that is neither output
nor dead-lettered) and I6 (inputs = outputs + dead letters).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Children,
    Ledger,
    Message,
    WorkerProcess,
    children,
    committed,
    counts,
    end_offsets,
    group_of,
    instance_file,
    read_topic,
    skipped,
    summary,
    wait_committed,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists{schema}}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: picky
    type: python-processor
    input: {inp}
    output: {out}
    errors: {{retries: 2, on-failure: dead-letter}}
    configuration: {{className: agents.Picky}}
"""
AGENTS = """
from sluice import Processor


class Picky(Processor):
    def process(self, record):
        if "poison" in str(record.value):
            raise ValueError("poison: this record can never be processed")
        return record
"""
BROKEN = 10.0
"""Seconds the dead-letter topic is missing: with a 3 s request timeout, the worker fails and is
restarted at least once meanwhile."""
HEADERS = ("error-class", "error-message", "origin-topic", "origin-partition", "origin-offset")


async def _app(
    tmp_path: Path, bootstrap: str, prefix: str, schema: str = ""
) -> tuple[Path, str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    inp, out = f"{prefix}-in-{suffix}", f"{prefix}-out-{suffix}"
    pipeline = PIPELINE.format(inp=inp, out=out, schema=schema)
    app = write_app(tmp_path, {"pipeline.yaml": pipeline, "python/agents.py": AGENTS})
    return app, inp, out, f"{inp}-deadletter"


async def _outcome(
    bootstrap: str, ledger: Ledger, inp: str, out: str, dlq: str, poisons: set[str]
) -> tuple[list[Message], list[Message], list[Message], dict[int, int]]:
    outputs = await read_topic(bootstrap, out, expect=ledger.ok - poisons, within=60)
    letters = await read_topic(bootstrap, dlq, expect=poisons, within=60, settle=0.5)
    inputs = await read_topic(bootstrap, inp, settle=0.5)
    offsets = await wait_committed(bootstrap, group_of("picky"), inp, end_offsets(inputs))
    return inputs, outputs, letters, offsets


def _dead_lettered(letters: list[Message]) -> set[tuple[int, int]]:
    return {
        (int(m.headers["origin-partition"]), int(m.headers["origin-offset"]))
        for m in letters
        if "origin-offset" in m.headers
    }


async def test_f8_poison_is_retried_then_dead_lettered_and_neighbours_flow(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app, inp, out, dlq = await _app(tmp_path, kafka_bootstrap, "f8")
    settings = KafkaSettings(kafka_bootstrap)
    await ensure_topics(settings, plan_application(load_application(app)).topics)
    ledger = Ledger()
    poisons: set[str] = set()
    started = time.monotonic()
    async with (
        Producer(settings) as producer,
        children(app, kafka_bootstrap, tmp_path, instance_file(tmp_path)) as kids,
    ):
        worker = await kids.worker("picky")
        for n in range(60):
            if n % 20 == 10:
                poisons.add(await ledger.send(producer, inp, "poison"))
            else:
                await ledger.send(producer, inp)
        inputs, outputs, letters, offsets = await _outcome(
            kafka_bootstrap, ledger, inp, out, dlq, poisons
        )
        flowed = time.monotonic() - started
        code = await worker.stop()
        log = worker.log.read_text()

    by_id = {m.ident: m for m in inputs}
    found, dead = counts(outputs), counts(letters)
    lost = (ledger.ok - poisons) - found.keys() | poisons - dead.keys()
    phantoms = (found.keys() | dead.keys()) - ledger.ok
    misplaced = (found.keys() & poisons) | (dead.keys() - poisons)
    done = _dead_lettered(letters)
    skips = skipped(inputs, offsets, lambda m: m.ident in found or (m.partition, m.offset) in done)
    line = summary(
        "F8 poison record, retries 2 then dead letter",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for n in (found + dead).values()),
        other_5xx=0,
        recovered=flowed,
        extra=f"outputs {len(found)}, dead letters {len(dead)} of {len(poisons)} poison, "
        f"skipped {len(skips)}, committed {offsets}",
    )
    assert not lost and not phantoms and not misplaced and not skips, line
    assert len(inputs) == len(found) + len(dead), f"I6: {line}"  # inputs = effects + DLQ
    assert offsets == end_offsets(inputs), line
    for letter in letters:
        original = by_id[letter.ident]
        for header in HEADERS:
            assert header in letter.headers, (header, letter.headers)
        assert letter.headers["origin-topic"] == inp.encode()
        assert letter.headers["origin-offset"] == str(original.offset).encode()
        assert letter.headers["error-class"] == b"builtins.ValueError"
        assert b"poison" in letter.headers["error-message"]
        assert letter.headers["ce_id"] == original.headers["ce_id"], "the CloudEvent id is kept"
    assert log.count("attempt(s)") >= len(poisons), log[-2000:]
    assert "3 attempt(s)" in log, "retries: 2 means three attempts"
    assert code == 0, log[-2000:]


async def _supervise(kids: Children, until: float, exits: list[int]) -> WorkerProcess:
    """Run the worker until ``until`` (monotonic), restarting it whenever it exits, as
    ``sluice run``'s supervisor does; the worker running at the end."""
    worker = await kids.worker("picky", ready=False)
    while time.monotonic() < until:
        if worker.process.returncode is not None:
            exits.append(worker.process.returncode)
            worker = await kids.worker("picky", ready=False)
        await asyncio.sleep(0.2)
    return worker


async def test_f9_poison_with_the_dead_letter_topic_unwritable_is_never_committed_past(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app, inp, out, dlq = await _app(tmp_path, kafka_bootstrap, "f9")
    settings = KafkaSettings(kafka_bootstrap)
    # The dead-letter topic does not exist (the broker creates no topic by itself): every write
    # to it fails. Creating it is the fix.
    topics = plan_application(load_application(app)).topics
    await ensure_topics(settings, [t for t in topics if t.name != dlq])
    ledger = Ledger()
    poisons: set[str] = set()
    async with Producer(settings) as producer:
        for n in range(30):
            if n == 10:
                poisons.add(await ledger.send(producer, inp, "poison"))
            else:
                await ledger.send(producer, inp)
    instance = instance_file(tmp_path, **{"request.timeout.ms": "3000"})
    exits: list[int] = []
    async with children(app, kafka_bootstrap, tmp_path, instance) as kids:
        worker = await _supervise(kids, time.monotonic() + BROKEN, exits)
        inputs = await read_topic(kafka_bootstrap, inp, settle=0.5)
        poison_at = next(m for m in inputs if m.ident in poisons)
        while_broken = await committed(kafka_bootstrap, group_of("picky"), inp)

        await ensure_topics(settings, [t for t in topics if t.name == dlq])
        fixed_at = time.monotonic()
        worker = await _supervise(kids, time.monotonic() + 1, exits)
        _, outputs, letters, offsets = await _outcome(
            kafka_bootstrap, ledger, inp, out, dlq, poisons
        )
        recovered = time.monotonic() - fixed_at
        code = await worker.stop()

    found, dead = counts(outputs), counts(letters)
    lost = (ledger.ok - poisons) - found.keys() | poisons - dead.keys()
    phantoms = (found.keys() | dead.keys()) - ledger.ok
    done = _dead_lettered(letters)
    skips = skipped(inputs, offsets, lambda m: m.ident in found or (m.partition, m.offset) in done)
    line = summary(
        f"F9 poison with the dead-letter topic missing {BROKEN:.0f} s, then created",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for n in (found + dead).values()),
        other_5xx=0,
        recovered=recovered,
        extra=f"poison at offset {poison_at.offset}, committed while broken {while_broken}, "
        f"worker exits while broken {exits}, dead letters {len(dead)}, committed {offsets}",
    )
    assert while_broken.get(poison_at.partition, 0) <= poison_at.offset, f"I4: {line}"
    assert not lost and not phantoms and not skips, line
    assert offsets == end_offsets(inputs), line
    assert len(dead) == 1, line
    assert code == 0, line


async def test_f12b_raw_bytes_on_the_topic_are_dead_lettered_as_they_are(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A string topic: a plain message must be UTF-8 text, a CloudEvent complete and well-formed.
    app, inp, out, dlq = await _app(tmp_path, kafka_bootstrap, "f12b", ", schema: {type: string}")
    settings = KafkaSettings(kafka_bootstrap)
    await ensure_topics(settings, plan_application(load_application(app)).topics)
    ledger = Ledger()
    garbage: list[tuple[bytes, list[tuple[str, bytes]]]] = [
        (b"\xff\xfe not UTF-8 \x00", []),
        (b"\xc3\x28", [("note", b"plain")]),
        (b"{", [("ce_specversion", b"1.0"), ("content-type", b"application/json")]),
        (b"x", [("ce_specversion", b"1.0")]),  # no id, source or type
    ]
    started = time.monotonic()
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await raw.start()
    async with (
        Producer(settings) as producer,
        children(app, kafka_bootstrap, tmp_path, instance_file(tmp_path)) as kids,
    ):
        try:
            for value, headers in garbage:
                await ledger.send(producer, inp)
                await raw.send_and_wait(inp, value, headers=headers)
            await ledger.send(producer, inp)
        finally:
            await raw.stop()
        worker = await kids.worker("picky")
        outputs = await read_topic(kafka_bootstrap, out, expect=ledger.ok, within=60)
        inputs = await read_topic(kafka_bootstrap, inp, settle=0.5)
        letters = await read_topic(kafka_bootstrap, dlq, settle=0.5)
        offsets = await wait_committed(kafka_bootstrap, group_of("picky"), inp, end_offsets(inputs))
        flowed = time.monotonic() - started
        code = await worker.stop()

    found = counts(outputs)
    lost = ledger.ok - found.keys()
    phantoms = found.keys() - ledger.ok
    done = _dead_lettered(letters)
    skips = skipped(inputs, offsets, lambda m: m.ident in found or (m.partition, m.offset) in done)
    line = summary(
        "F12b raw bytes on the input topic",
        sent=ledger.sent + len(garbage),
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for n in found.values()),
        other_5xx=0,
        recovered=flowed,
        extra=f"dead letters {len(letters)} of {len(garbage)} garbage, skipped {len(skips)}",
    )
    assert not lost and not phantoms and not skips, line
    assert sorted(m.value for m in letters) == sorted(v for v, _ in garbage), line
    assert all(m.headers.get("error-class") == b"sluice.Undecodable" for m in letters), line
    assert len(inputs) == len(found) + len(letters), f"I6: {line}"
    assert offsets == end_offsets(inputs), line
    assert code == 0, line
