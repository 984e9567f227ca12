"""Batches across records: the texts of several records in one call to a model.

LangStream's ``compute-ai-embeddings`` sends every record's text on its own unless
``flush-interval`` is set; then texts wait until ``batch-size`` of them are gathered, or until
``flush-interval`` milliseconds passed since the first one waited, and go to the model in one
call; up to ``concurrency`` calls run at once. :class:`Batcher` does that for any call that
takes a list and answers a list of the same length, in the same order.

Each record awaits its own items' answers, so the agent keeps the shape ``process(record)``:
the executor lets several records into the agent at once (the agent's ``records_in_flight``,
see ``workers.agents.Batching``) and still writes their outputs, and commits their offsets, in
input order. A call that fails fails every record with an item in it (LangStream did the same),
and each record's ``errors`` policy decides; a retried record joins a later batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Batcher(Generic[Item, Answer]):
    """Gathers items submitted by concurrent callers into calls of at most ``size`` items.

    A call is made as soon as ``size`` items wait, or ``interval`` seconds after the first
    waiting item arrived; at most ``concurrency`` calls run at once (the next ones wait their
    turn in order).
    """

    def __init__(
        self,
        call: Callable[[list[Item]], Awaitable[list[Answer]]],
        *,
        size: int,
        interval: float,
        concurrency: int,
    ) -> None:
        if size < 1 or concurrency < 1 or interval < 0:
            raise ValueError("size and concurrency must be at least 1, interval not negative")
        self._call = call
        self._size = size
        self._interval = interval
        self._turns = asyncio.Semaphore(concurrency)
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.calls_made = 0
        """How many calls were made (for tests and benchmarks)."""

    async def submit(self, items: list[Item]) -> list[Answer]:
        """The answers to ``items``, in order, once the batches holding them are answered."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Answer]] = []
        for item in items:
            future: asyncio.Future[Answer] = loop.create_future()
            self._waiting.append((item, future))
            futures.append(future)
            if len(self._waiting) >= self._size:
                self._flush()
        if self._waiting and self._timer is None:
            self._timer = loop.call_later(self._interval, self._timer_fired)
        if len(futures) == 1:  # one item a record (a sink's row): no gathering future
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _flush(self, everything: bool = False) -> None:
        """Start a call per full batch; with ``everything`` (the timer fired), for the rest
        too."""
        while len(self._waiting) >= self._size or (everything and self._waiting):
            batch, self._waiting = self._waiting[: self._size], self._waiting[self._size :]
            task = asyncio.ensure_future(self._answer(batch))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        if self._timer is not None and not self._waiting:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        self._timer = None
        self._flush(everything=True)

    async def _answer(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        futures = [future for _, future in batch]
        async with self._turns:
            if all(future.done() for future in futures):
                return  # every caller is gone (cancelled): nothing to compute
            self.calls_made += 1
            try:
                answers = await self._call([item for item, _ in batch])
                if len(answers) != len(batch):
                    raise ValueError(f"{len(answers)} answers for {len(batch)} items")
            except Exception as error:
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
                return
        for future, answer in zip(futures, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def close(self) -> None:
        """Answer what waits now and wait for the calls under way."""
        self._flush(everything=True)
        if self._calls:
            await asyncio.wait(set(self._calls))
