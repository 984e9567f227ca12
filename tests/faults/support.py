"""What the fault tests share: a gateway process, a ledger of produce outcomes and a reader that
checks the ledger against what the topic holds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from sluice.kafka import Producer
from sluice.net import free_port
from sluice.record import Record


def produce_app(parent: Path, topic: str = "in", config: dict[str, str] | None = None) -> Path:
    """An application with one produce gateway ``in`` on ``topic`` (created with ``config``)."""
    app = parent / "faults"
    app.mkdir(parents=True, exist_ok=True)
    (app / "gateways.yaml").write_text(
        f"gateways:\n  - id: in\n    type: produce\n    topic: {topic}\n"
    )
    lines = [f"topics:\n  - name: {topic}\n    creation-mode: create-if-not-exists\n"]
    if config:
        lines.append("    config:\n")
        lines += [f'      {key}: "{value}"\n' for key, value in config.items()]
    (app / "pipeline.yaml").write_text("".join(lines))
    return app


@dataclass
class Gateway:
    """A ``python -m gateway`` child process and the file its output goes to."""

    url: str
    process: asyncio.subprocess.Process
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


@asynccontextmanager
async def gateway_process(
    app: Path, bootstrap: str, log: Path, *extra: str, ready_within: float = 60
) -> AsyncIterator[Gateway]:
    """The gateway of ``app`` as its own process on a free port, once ``/readyz`` answers 200;
    SIGTERM and a bounded wait afterwards."""
    port = free_port()
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", str(app), "--bootstrap-servers", bootstrap,
            "--host", "127.0.0.1", "--port", str(port), *extra,
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            while True:
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError("the gateway did not get ready:\n" + _tail(log))
                await asyncio.sleep(0.1)
        yield Gateway(url, process, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass
class Ledger:
    """Every produce sent with a unique value, and its outcome: ``ok`` (2xx), ``fail`` (a
    definite 4xx) or ``info`` (5xx, timeout, reset: it may or may not have been written)."""

    ok: set[str] = field(default_factory=set)
    fail: set[str] = field(default_factory=set)
    info: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return len(self.ok) + len(self.fail) + len(self.info)

    async def produce(
        self, client: httpx.AsyncClient, url: str, *, padding: int = 0
    ) -> httpx.Response | None:
        """One produce of a fresh id (``padding`` bytes more in the value); None on a transport
        error."""
        ident = f"ledger-{uuid.uuid4().hex}"
        value = ident + " " + "x" * padding if padding else ident
        try:
            response = await client.post(url, json={"value": value})
        except httpx.TransportError:
            self.info.add(ident)
            self.statuses[0] += 1
            return None
        self.statuses[response.status_code] += 1
        if response.is_success:
            self.ok.add(ident)
        elif 400 <= response.status_code < 500:
            self.fail.add(ident)
        else:
            self.info.add(ident)
        return response

    def new_id(self) -> str:
        return f"ledger-{uuid.uuid4().hex}"

    async def send(self, producer: Producer, topic: str, text: str = "") -> str:
        """One record of a fresh id (and ``text`` after it) written straight to ``topic``,
        bypassing the gateway; ``ok`` once Kafka acknowledged it."""
        ident = self.new_id()
        try:
            await producer.send(topic, Record(f"{ident} {text}".rstrip()), source="/faults")
        except Exception:  # what matters is the outcome, recorded as indeterminate
            self.info.add(ident)
            return ident
        self.ok.add(ident)
        return ident


async def ids_in_topic(bootstrap: str, topic: str, *, settle: float = 3) -> Counter[str]:
    """How often each ledger id appears in ``topic`` (read from the beginning, read_committed),
    reading until no new message came for ``settle`` seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    found: Counter[str] = Counter()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(settle * 1000))
            if not any(batch.values()):
                return found
            for messages in batch.values():
                for message in messages:
                    value = (message.value or b"").decode("utf-8", "replace")
                    start = value.find("ledger-")
                    if start >= 0:
                        found[value[start : start + len("ledger-") + 32]] += 1
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Check:
    """The invariants over a ledger and a topic's contents."""

    lost: frozenset[str]
    phantoms: frozenset[str]
    duplicates: int

    @classmethod
    def of(cls, ledger: Ledger, found: Counter[str]) -> Check:
        return cls(
            lost=frozenset(ledger.ok - found.keys()),
            phantoms=frozenset(found.keys() - ledger.ok - ledger.info),
            duplicates=sum(count - 1 for ident, count in found.items() if ident in ledger.ok),
        )


# -- applications, worker processes, topic readers and the per-case summary ----------------------

APP = "faults"
"""The application's name (its folder's): gateway URLs and consumer groups contain it."""


def write_app(parent: Path, files: dict[str, str]) -> Path:
    """An application folder ``faults`` under ``parent`` with ``files`` (relative path: text)."""
    app = parent / APP
    for relative, text in files.items():
        path = app / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return app


def instance_file(parent: Path, bootstrap: str | None = None, **client: str) -> Path:
    """An instance.yaml with short consumer sessions (a stopped worker's partitions move in a
    second or two), ``bootstrap`` servers if given and more client properties."""
    options = {"session.timeout.ms": "2000", "heartbeat.interval.ms": "500", **client}
    if bootstrap:
        options["bootstrap.servers"] = bootstrap
    lines = ["instance:", "  streamingCluster:", "    type: kafka", "    configuration:"]
    lines += ["      admin:"] + [f'        {key}: "{value}"' for key, value in options.items()]
    path = parent / "instance.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def group_of(executor: str) -> str:
    """The consumer group of ``executor``'s workers (``sluice-<application>-<executor>``)."""
    return f"sluice-{APP}-{executor}"


@dataclass
class WorkerProcess:
    """A ``python -m workers`` child process, its health port and its output file."""

    process: asyncio.subprocess.Process
    health_port: int
    log: Path

    async def ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"worker exited with {self.process.returncode}:\n" + _tail(self.log)
                    )
                try:
                    url = f"http://127.0.0.1:{self.health_port}/readyz"
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("worker not ready:\n" + _tail(self.log))

    async def stop(self, sig: int = signal.SIGTERM, within: float = 30) -> int:
        """Send ``sig`` and return the exit code (a bounded wait)."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), within)


class Children:
    """Worker processes started by a test; whatever still runs at the end is killed."""

    def __init__(self, app: Path, bootstrap: str, logs: Path, instance: Path | None) -> None:
        self.app, self.bootstrap, self.logs, self.instance = app, bootstrap, logs, instance
        self.workers: list[WorkerProcess] = []

    async def worker(
        self, executor: str, *, env: dict[str, str] | None = None, ready: bool = True
    ) -> WorkerProcess:
        port = free_port()
        log = self.logs / f"worker-{executor}-{len(self.workers)}.log"
        instance = ["-i", str(self.instance)] if self.instance else []
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "workers", str(self.app), "--executor", executor,
                "--bootstrap-servers", self.bootstrap, "--health-port", str(port),
                "--state-dir", str(self.logs / "state"), *instance,
                env={**os.environ, **(env or {})}, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        worker = WorkerProcess(process, port, log)
        self.workers.append(worker)
        if ready:
            await worker.ready()
        return worker

    async def close(self) -> None:
        for worker in self.workers:
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()


@asynccontextmanager
async def children(
    app: Path, bootstrap: str, logs: Path, instance: Path | None = None
) -> AsyncIterator[Children]:
    kids = Children(app, bootstrap, logs, instance)
    try:
        yield kids
    finally:
        await kids.close()


@dataclass(frozen=True)
class Message:
    """One message of a topic as the checker sees it."""

    partition: int
    offset: int
    value: bytes
    headers: dict[str, bytes]

    @property
    def ident(self) -> str | None:
        """The ledger id the message carries (in its value), if any."""
        text = self.value.decode("utf-8", "replace")
        start = text.find("ledger-")
        return text[start : start + len("ledger-") + 32] if start >= 0 else None


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: Iterable[str] = (),
    within: float = 60,
    settle: float = 2,
) -> list[Message]:
    """Every message of ``topic`` from the beginning (read_committed): read until every id of
    ``expect`` was seen (at most ``within`` seconds), then until nothing new came for
    ``settle`` seconds."""
    wanted = set(expect)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    got: list[Message] = []
    deadline = time.monotonic() + within
    try:
        while True:
            waiting = bool(wanted) and time.monotonic() < deadline
            batch = await consumer.getmany(timeout_ms=500 if waiting else int(settle * 1000))
            for messages in batch.values():
                for m in messages:
                    message = Message(
                        m.partition, m.offset, m.value or b"", {k: v for k, v in m.headers}
                    )
                    got.append(message)
                    wanted.discard(message.ident or "")
            if not waiting and not any(batch.values()):
                return got
    finally:
        await consumer.stop()


def counts(messages: Iterable[Message]) -> Counter[str]:
    """How often each ledger id appears among ``messages``."""
    return Counter(m.ident for m in messages if m.ident is not None)


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed for ``topic``, by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def wait_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], *, within: float = 30
) -> dict[int, int]:
    """The committed offsets once they reach ``ends`` (lag 0), or as they are after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        offsets = await committed(bootstrap, group, topic)
        if all(offsets.get(p, 0) >= end for p, end in ends.items() if end > 0):
            return offsets
        if time.monotonic() > deadline:
            return offsets
        await asyncio.sleep(0.5)


def end_offsets(messages: Iterable[Message]) -> dict[int, int]:
    """1 + the highest offset read, by partition."""
    ends: dict[int, int] = {}
    for m in messages:
        ends[m.partition] = max(ends.get(m.partition, 0), m.offset + 1)
    return ends


def skipped(
    inputs: Iterable[Message], offsets: dict[int, int], finished: Callable[[Message], bool]
) -> list[Message]:
    """I4: input messages below their partition's committed offset that are not finished."""
    return [m for m in inputs if m.offset < offsets.get(m.partition, 0) and not finished(m)]


def other_5xx(statuses: Counter[int]) -> int:
    """Answers 500-599 except 503 (the one server error a fault may cause)."""
    return sum(n for status, n in statuses.items() if status >= 500 and status != 503)


def summary(
    case: str,
    *,
    sent: int,
    ok: int,
    info: int,
    lost: int,
    phantoms: int,
    duplicates: int,
    other_5xx: int,
    recovered: float | None = None,
    extra: str = "",
) -> str:
    """The one-line report of a case (printed; ``pytest -s`` shows it)."""
    recovery = "n/a" if recovered is None else f"{recovered:.1f} s"
    line = (
        f"FAULT {case}: sent {sent}, ok {ok}, info {info}, lost {lost}, phantoms {phantoms}, "
        f"duplicates {duplicates}, 5xx other than 503 {other_5xx}, time to recover {recovery}"
    )
    line += f"; {extra}" if extra else ""
    print(line, flush=True)
    return line


@asynccontextmanager
async def sluice_run(
    app: Path, instance: Path, logs: Path, *extra: str, ready_within: float = 150
) -> AsyncIterator[Gateway]:
    """``sluice run APP -i INSTANCE`` (the instance names the broker) as a user runs it, once it
    printed its summary; its gateway's URL. Ctrl-C (SIGINT) and a bounded wait afterwards."""
    port = free_port()
    log = logs / "sluice-run.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sluice.cli.main", "run", str(app), "-i", str(instance),
            "--state-dir", str(logs / "state"), "--gateway-port", str(port), *extra,
            stdout=out, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_within
        while "ready: kafka=" not in log.read_text(errors="replace"):
            if process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError("sluice run did not get ready:\n" + _tail(log))
            await asyncio.sleep(0.2)
        yield Gateway(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


async def produce_steadily(
    ledger: Ledger, client: httpx.AsyncClient, url: str, stop: asyncio.Event, pause: float = 0.05
) -> None:
    """Produce fresh ids one after the other until ``stop`` is set."""
    while not stop.is_set():
        await ledger.produce(client, url)
        await asyncio.sleep(pause)


async def recovery_time(
    ledger: Ledger, client: httpx.AsyncClient, url: str, since: float, *, within: float = 60
) -> float | None:
    """Seconds from ``since`` (monotonic) until a fresh produce answers 200; None if none did
    within ``within`` seconds."""
    while time.monotonic() - since < within:
        response = await ledger.produce(client, url)
        if response is not None and response.status_code == 200:
            return time.monotonic() - since
        await asyncio.sleep(0.2)
    return None


PIPELINE_APP = {
    "gateways.yaml": """
        gateways:
          - {id: in, type: produce, topic: faults-in}
    """,
    "pipeline.yaml": """
        topics:
          - {name: faults-in, creation-mode: create-if-not-exists}
          - {name: faults-out, creation-mode: create-if-not-exists}
        pipeline:
          - {id: copy, type: identity, input: faults-in, output: faults-out}
    """,
}
"""A produce gateway on ``faults-in`` and a worker copying it to ``faults-out`` (executor
``copy``): the whole path a record takes, for the cases that run their own broker."""


@dataclass
class Outage:
    """What a client saw while Kafka was away: the ledger, when ``/readyz`` first said so
    (seconds after the cut), when produce answered 200 again (seconds after the heal)."""

    ledger: Ledger
    not_ready_after: float | None
    recovered: float | None
    healed_at: float


async def ride_out(
    base_url: str,
    cut: Callable[[], Awaitable[None]],
    heal: Callable[[], Awaitable[None]],
    seconds: float,
    *,
    produce_timeout: float,
) -> Outage:
    """Produce steadily (4 writers) through the gateway at ``base_url`` while Kafka is cut off
    for ``seconds``; then measure how soon a produce succeeds after ``heal`` returned, and
    produce 20 more that must all succeed."""
    ledger = Ledger()
    url = f"{base_url}/api/gateways/produce/default/{APP}/in"
    async with httpx.AsyncClient(timeout=produce_timeout + 10, trust_env=False) as client:
        for _ in range(20):
            response = await ledger.produce(client, url)
            assert response is not None and response.status_code == 200, response
        stop = asyncio.Event()
        writers = [
            asyncio.create_task(produce_steadily(ledger, client, url, stop)) for _ in range(4)
        ]
        try:
            await asyncio.sleep(1)
            await cut()
            down_at = time.monotonic()
            not_ready_after: float | None = None
            while time.monotonic() - down_at < seconds:
                try:
                    ready = await client.get(f"{base_url}/readyz")
                    if ready.status_code == 503 and not_ready_after is None:
                        not_ready_after = time.monotonic() - down_at
                        assert "Kafka" in ready.json()["detail"], ready.text
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            await heal()
            healed_at = time.monotonic()
            recovered = await recovery_time(ledger, client, url, healed_at)
            await asyncio.sleep(2)
        finally:
            stop.set()
            await asyncio.gather(*writers)
        after = [await ledger.produce(client, url) for _ in range(20)]
        assert [r.status_code if r else 0 for r in after] == [200] * 20, ledger.statuses
    return Outage(ledger, not_ready_after, recovered, healed_at)


async def check_pipeline(
    case: str, bootstrap: str, outage: Outage, extra: str = "", *, not_ready_within: float = 10
) -> str:
    """I1 (every acknowledged id in ``faults-in`` and, through the worker, in ``faults-out``),
    I2, producer duplicates 0, I4, lag 0 and no 5xx but 503, with the case's summary line."""
    ledger = outage.ledger
    outputs = await read_topic(bootstrap, "faults-out", expect=ledger.ok, within=90, settle=1)
    delivered = time.monotonic() - outage.healed_at - 1
    inputs = await read_topic(bootstrap, "faults-in", settle=0.5)
    ends = end_offsets(inputs)
    offsets = await wait_committed(bootstrap, group_of("copy"), "faults-in", ends)
    written, out = counts(inputs), counts(outputs)
    lost = (ledger.ok - written.keys()) | (ledger.ok - out.keys())
    phantoms = (written.keys() | out.keys()) - ledger.ok - ledger.info
    producer_duplicates = sum(n - 1 for i, n in written.items() if i in ledger.ok)
    skips = skipped(inputs, offsets, lambda m: m.ident in out)
    recovered = "none" if outage.recovered is None else f"{outage.recovered:.1f} s"
    not_ready = "never" if outage.not_ready_after is None else f"{outage.not_ready_after:.1f} s"
    line = summary(
        case,
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for n in out.values()),
        other_5xx=other_5xx(ledger.statuses),
        recovered=outage.recovered,
        extra=f"statuses {dict(ledger.statuses)}, producer duplicates {producer_duplicates}, "
        f"/readyz 503 after {not_ready}, produce 200 after {recovered}, all outputs "
        f"{delivered:.1f} s after the heal, skipped {len(skips)}, lag "
        f"{sum(ends.values()) - sum(offsets.get(p, 0) for p in ends)}"
        + (f", {extra}" if extra else ""),
    )
    assert outage.recovered is not None and outage.recovered < 10, line
    assert not lost and not phantoms and not skips, line
    assert producer_duplicates == 0, line
    assert offsets == ends, line
    assert set(ledger.statuses) <= {200, 503}, line
    assert outage.not_ready_after is not None, f"/readyz said 200 throughout: {line}"
    assert outage.not_ready_after < not_ready_within, line
    return line
