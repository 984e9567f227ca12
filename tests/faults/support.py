"""What the fault tests share: a gateway process, a ledger of produce outcomes and a reader that
checks the ledger against what the topic holds."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from sluice.net import free_port


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
