"""A source executor: read from the outside, run the fused processors, write, then commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, field

from sluice.application.model import ErrorsSpec
from sluice.kafka import Producer, SendResult
from sluice.record import Record
from workers.agents import LoadedSource
from workers.chain import Chain
from workers.errors import ExecutorFailed
from workers.policy import Backoff, Done, Failed, Skipped, attempt

log = logging.getLogger("sluice.worker")


@dataclass(frozen=True)
class SourceSettings:
    output_topic: str | None
    errors: ErrorsSpec
    source: str
    backoff: Backoff = field(default_factory=Backoff)
    idle_first: float = 0.05
    idle_limit: float = 1.0


class SourceExecutor:
    """Calls ``read()`` until stopped; ``commit()`` gets each batch once Kafka acknowledged it."""

    def __init__(
        self, settings: SourceSettings, source: LoadedSource, chain: Chain, producer: Producer
    ) -> None:
        self._settings = settings
        self._source = source
        self._chain = chain
        self._producer = producer
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        idle = self._settings.idle_first
        self.ready = True
        try:
            while not stop.is_set():
                batch = await self._source.read()
                if not batch:
                    # Nothing now: back off (bounded) instead of spinning on read().
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=idle)
                    idle = min(self._settings.idle_limit, idle * 2)
                    continue
                idle = self._settings.idle_first
                await self._deliver(batch)
        finally:
            self.ready = False

    async def _deliver(self, batch: list[Record]) -> None:
        """Process the batch in order, pipeline the writes, then commit what Kafka took."""
        writes: list[tuple[Record, asyncio.Future[list[SendResult]] | None]] = []
        async with contextlib.aclosing(self._outcomes(batch)) as outcomes:
            async for record, outcome in outcomes:
                if isinstance(outcome, Done):
                    writes.append((record, self._send(outcome.value)))
                elif isinstance(outcome, Failed):
                    if self._settings.errors.on_failure == "fail":
                        raise ExecutorFailed(
                            f"a source record failed: {outcome.error}"
                        ) from outcome.error
                    await self._give_up(record, outcome.error)
                else:
                    writes.append((record, None))
        written: list[Record] = []
        for record, pending in writes:
            try:
                if pending is not None:
                    await pending
            except Exception as error:
                await self._give_up(record, error)
            else:
                written.append(record)
        if written:
            await self._source.commit(written)

    async def _outcomes(
        self, batch: list[Record]
    ) -> AsyncGenerator[tuple[Record, Done[list[Record]] | Skipped | Failed], None]:
        """Each record of ``batch`` with what the chain made of it, in order. One at a time,
        or up to the chain's ``window`` at once when an agent gathers records into batches."""

        def run(record: Record) -> Awaitable[Done[list[Record]] | Skipped | Failed]:
            return attempt(
                lambda: self._chain.run(record),
                self._settings.errors,
                self._settings.backoff,
                what="source record",
            )

        window = self._chain.window
        if window == 1:
            for record in batch:
                yield record, await run(record)
            return
        gate = asyncio.Semaphore(window)

        async def gated(record: Record) -> Done[list[Record]] | Skipped | Failed:
            async with gate:
                return await run(record)

        running = [asyncio.ensure_future(gated(record)) for record in batch]
        try:
            for record, outcome in zip(batch, running, strict=True):
                yield record, await outcome
        finally:
            for outcome in running:
                outcome.cancel()

    def _send(self, outputs: list[Record]) -> asyncio.Future[list[SendResult]] | None:
        """Each output to its ``destination``, else to the output topic (none: not written)."""
        default = self._settings.output_topic
        routed = [(out.destination or default, out) for out in outputs]
        sends = [
            self._producer.send(topic, out, source=self._settings.source)
            for topic, out in routed
            if topic is not None
        ]
        return asyncio.gather(*sends) if sends else None

    async def _give_up(self, record: Record, error: BaseException) -> None:
        log.warning("a source record failed for good: %s: %s", type(error).__name__, error)
        failure = error if isinstance(error, Exception) else RuntimeError(str(error))
        await self._source.permanent_failure(record, failure)
