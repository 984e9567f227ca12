"""Batches across records (workers.builtin.batching): sizes, the interval, concurrency, errors."""

from __future__ import annotations

import asyncio

import pytest

from workers.builtin.batching import Batcher


class Recorder:
    """A call that answers each item doubled and remembers the batches it was given."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail = fail
        self.running = 0
        self.most_running = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError("the model is down")
            return [item * 2 for item in items]
        finally:
            self.running -= 1


async def test_full_batches_go_at_once_and_the_rest_after_the_interval() -> None:
    call = Recorder()
    batcher = Batcher(call, size=3, interval=0.2, concurrency=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await asyncio.gather(*(batcher.submit([n]) for n in range(7)))
    assert answers == [[n * 2] for n in range(7)]
    assert call.batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert loop.time() - started >= 0.19  # the last item waited for the interval


async def test_a_record_of_several_items_gets_its_answers_in_order() -> None:
    call = Recorder()
    batcher = Batcher(call, size=2, interval=0.05, concurrency=2)
    first, second = await asyncio.gather(batcher.submit([1, 2, 3]), batcher.submit([4]))
    assert first == [2, 4, 6] and second == [8]
    assert call.batches == [[1, 2], [3, 4]]


async def test_no_more_calls_than_concurrency_at_once() -> None:
    call = Recorder(delay=0.05)
    batcher = Batcher(call, size=1, interval=0.01, concurrency=2)
    await asyncio.gather(*(batcher.submit([n]) for n in range(6)))
    assert call.most_running == 2
    assert batcher.calls_made == 6


async def test_a_failed_call_fails_every_record_in_its_batch_only() -> None:
    call = Recorder()
    batcher = Batcher(call, size=2, interval=0.05, concurrency=1)
    assert list(await asyncio.gather(batcher.submit([1]), batcher.submit([2]))) == [[2], [4]]
    call.fail = True
    results = await asyncio.gather(batcher.submit([3]), batcher.submit([4]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "down" in str(r) for r in results)
    call.fail = False
    assert await batcher.submit([5]) == [10]  # the batcher goes on after a failure


async def test_a_call_answering_the_wrong_number_of_items_fails_the_batch() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher(short, size=2, interval=0.01, concurrency=1)
    with pytest.raises(ValueError, match="1 answers for 2 items"):
        await batcher.submit([1, 2])


async def test_a_cancelled_caller_does_not_break_the_others() -> None:
    call = Recorder()
    batcher = Batcher(call, size=3, interval=0.1, concurrency=1)
    gone = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)
    gone.cancel()
    assert await batcher.submit([2]) == [4]
    assert gone.cancelled()


async def test_close_answers_what_waits() -> None:
    call = Recorder()
    batcher = Batcher(call, size=10, interval=60.0, concurrency=1)
    waiting = asyncio.ensure_future(batcher.submit([1, 2]))
    await asyncio.sleep(0)
    await batcher.close()
    assert await waiting == [2, 4]


async def test_nothing_to_embed_makes_no_call() -> None:
    call = Recorder()
    batcher = Batcher(call, size=2, interval=0.01, concurrency=1)
    assert await batcher.submit([]) == []
    assert call.batches == []


def test_settings_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(Recorder(), size=0, interval=0.1, concurrency=1)
