"""A chain with a batching agent: several records at once, every other agent in input order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sluice.record import Record
from workers.chain import Chain, InOrder


class SlowBatching:
    """A batching agent whose records finish in the order a test decides, not input order."""

    records_in_flight = 4

    def __init__(self, delays: dict[str, float]) -> None:
        self.delays = delays
        self.together = 0
        self.most_together = 0

    async def process(self, record: Record) -> list[Record]:
        self.together += 1
        self.most_together = max(self.most_together, self.together)
        try:
            await asyncio.sleep(self.delays.get(str(record.value), 0.0))
        finally:
            self.together -= 1
        if record.value == "fail":
            raise ValueError("this record cannot be embedded")
        return [record]


class Recording:
    """A plain agent (and sink) that must never be entered twice at once."""

    def __init__(self, split: bool = False) -> None:
        self.seen: list[Any] = []
        self.inside = False
        self.split = split

    async def process(self, record: Record) -> list[Record]:
        await self.write(record)
        if self.split:
            return [Record(f"{record.value}-a"), Record(f"{record.value}-b")]
        if record.value == "away":
            return [record.to("elsewhere")]
        return [record]

    async def write(self, record: Record) -> None:
        assert not self.inside, "entered twice at once"
        self.inside = True
        await asyncio.sleep(0.001)
        self.seen.append(record.value)
        self.inside = False

    async def init(self, config: dict[str, Any]) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


async def test_records_reach_the_later_agents_in_input_order() -> None:
    # "a" finishes its batch last: "b", "c", "d" wait for it before the sink.
    batching = SlowBatching({"a": 0.08, "b": 0.04, "c": 0.06, "d": 0.0})
    before, sink = Recording(), Recording()
    chain = Chain([before, batching], sink)  # type: ignore[list-item]
    assert chain.window == 4
    await asyncio.gather(*(chain.run(Record(v)) for v in "abcd"))
    assert before.seen == list("abcd")
    assert sink.seen == list("abcd")
    assert batching.most_together == 4


async def test_a_failed_record_gives_its_turn_up() -> None:
    batching = SlowBatching({"fail": 0.02})
    sink = Recording()
    chain = Chain([batching], sink)  # type: ignore[list-item]
    results = await asyncio.gather(
        *(chain.run(Record(v)) for v in ("x", "fail", "y")), return_exceptions=True
    )
    assert isinstance(results[1], ValueError)
    assert sink.seen == ["x", "y"]


async def test_outputs_routed_away_and_split_outputs_keep_their_order() -> None:
    batching = SlowBatching({"p": 0.03})
    splitter, after = Recording(split=True), Recording()
    chain = Chain([batching, splitter, after])  # type: ignore[list-item]
    results = await asyncio.gather(*(chain.run(Record(v)) for v in ("p", "q")))
    assert after.seen == ["p-a", "p-b", "q-a", "q-b"]
    assert [[r.value for r in result] for result in results] == [["p-a", "p-b"], ["q-a", "q-b"]]
    router = Recording()
    chain = Chain([batching, router, Recording()])  # type: ignore[list-item]
    [away] = await chain.run(Record("away"))
    assert away.destination == "elsewhere"


async def test_a_chain_without_a_batching_agent_has_a_window_of_one() -> None:
    assert Chain([Recording()]).window == 1


async def test_in_order_skips_tickets_that_leave_early() -> None:
    order = InOrder()
    entered: list[int] = []

    async def go(ticket: int) -> None:
        await order.turn(ticket)
        entered.append(ticket)
        order.leave(ticket)

    late = asyncio.ensure_future(go(2))
    await asyncio.sleep(0)
    assert entered == []
    order.leave(1)  # ticket 1 ended before this agent (dropped, failed)
    order.leave(0)
    await asyncio.wait_for(late, 1)
    assert entered == [2]
    order.leave(2)  # idempotent
    await asyncio.wait_for(go(3), 1)
    assert entered == [2, 3]


async def test_a_cancelled_run_does_not_block_the_next() -> None:
    batching = SlowBatching({"slow": 10.0})
    sink = Recording()
    chain = Chain([batching], sink)  # type: ignore[list-item]
    slow = asyncio.ensure_future(chain.run(Record("slow")))
    fast = asyncio.ensure_future(chain.run(Record("fast")))
    await asyncio.sleep(0.01)
    slow.cancel()
    await asyncio.wait_for(fast, 1)
    assert sink.seen == ["fast"]
    with pytest.raises(asyncio.CancelledError):
        await slow


class BatchingSink:
    """A sink that writes what arrives together in one go (as a batched database write)."""

    records_in_flight = 3

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.writes: list[list[Any]] = []

    async def write(self, record: Record) -> None:
        self.pending.append(record.value)
        await asyncio.sleep(0.02)  # the others arrive meanwhile
        if self.pending:
            self.writes.append(self.pending)
            self.pending = []


async def test_a_batching_sink_gets_records_together() -> None:
    sink = BatchingSink()
    before = Recording()
    chain = Chain([before], sink)  # type: ignore[arg-type]
    assert chain.window == 3
    await asyncio.gather(*(chain.run(Record(v)) for v in "xyz"))
    assert before.seen == list("xyz")
    assert sink.writes == [["x", "y", "z"]]
