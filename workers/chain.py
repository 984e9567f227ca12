"""A fused chain of agents run in memory: processors one after the other, then a sink."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from sluice.record import Record
from workers.agents import Batching, LoadedProcessor, LoadedSink


def carry_headers(source: Record, output: Record) -> Record:
    """The output with the input's headers it does not set itself (session ids, request ids)."""
    if not source.headers:
        return output
    missing = {k: v for k, v in source.headers.items() if k not in output.headers}
    if not missing:
        return output
    return replace(output, headers={**missing, **output.headers})


class InOrder:
    """Lets the runs of a chain through one agent one at a time, in the order they entered the
    chain (their tickets); a run that ends early (a failure, a record dropped or routed away
    before this agent) gives its turn up with :meth:`leave`."""

    def __init__(self) -> None:
        self._next = 0
        self._left: set[int] = set()
        self._wakeups: dict[int, asyncio.Future[None]] = {}

    async def turn(self, ticket: int) -> None:
        """Return when every earlier ticket has left."""
        while self._next < ticket:
            wakeup = asyncio.get_running_loop().create_future()
            self._wakeups[ticket] = wakeup
            try:
                await wakeup
            finally:
                self._wakeups.pop(ticket, None)

    def leave(self, ticket: int) -> None:
        """``ticket`` is done here (or never comes): the next one may go (idempotent)."""
        if ticket < self._next:
            return
        self._left.add(ticket)
        while self._next in self._left:
            self._left.discard(self._next)
            self._next += 1
        wakeup = self._wakeups.get(self._next)
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)


@dataclass(frozen=True)
class Chain:
    """Processors in order, then an optional sink. Outputs carry their input's headers.

    An output with a ``destination`` leaves the chain where it was made: the later processors
    and the sink do not see it, and it is returned for its topic.

    Usually one record is in the chain at a time. When an agent gathers records into batches
    (:class:`workers.agents.Batching`), the executors run up to :attr:`window` records at once;
    the batching agents then see them together, and every other agent still sees one record at
    a time, in the order the records entered the chain (:class:`InOrder`), so user code need
    not be reentrant and a sink writes in input order (a batching sink gets them together and
    keeps its own order).
    """

    processors: Sequence[LoadedProcessor] = ()
    sink: LoadedSink | None = None
    _tickets: Iterator[int] = field(
        default_factory=itertools.count, init=False, repr=False, compare=False
    )
    _orders: dict[int, InOrder] = field(default_factory=dict, init=False, repr=False, compare=False)

    @functools.cached_property
    def window(self) -> int:
        """How many records may be in the chain at once: 1, unless an agent gathers records
        into batches, whose outputs the executors still write in input order. Read once the
        agents are initialised (their configuration decides)."""
        agents: list[object] = [*self.processors, self.sink]
        return max(
            [1, *(agent.records_in_flight for agent in agents if isinstance(agent, Batching))]
        )

    @functools.cached_property
    def _batching(self) -> tuple[tuple[bool, ...], bool]:
        """Which processors, and whether the sink, gather records into batches: looked up once
        (a check against the protocol reads the agent's ``records_in_flight`` each time)."""
        processors = tuple(isinstance(p, Batching) for p in self.processors)
        return processors, isinstance(self.sink, Batching)

    async def run(self, record: Record) -> list[Record]:
        """The records to write: each to its ``destination``, else to the output topic (the
        sink, when the chain ends with one, takes those)."""
        if self.window > 1:
            return await self._run_in_order(record)
        records = [record]
        routed: list[Record] = []
        for processor in self.processors:
            outputs: list[Record] = []
            for current in records:
                for out in await processor.process(current):
                    out = carry_headers(current, out)
                    (outputs if out.destination is None else routed).append(out)
            records = outputs
        if self.sink is not None:
            for current in records:
                await self.sink.write(current)
            return routed
        return routed + records

    async def _run_in_order(self, record: Record) -> list[Record]:
        """:meth:`run` with other records in the chain at the same time (see the class)."""
        ticket = next(self._tickets)
        batching, sink_batches = self._batching
        records = [record]
        routed: list[Record] = []
        try:
            for stage, processor in enumerate(self.processors):
                if batching[stage]:
                    # Together, so that one record's several outputs share a batch too.
                    if len(records) == 1:  # the common case: no task for one record
                        made = [await processor.process(records[0])]
                    else:
                        made = await asyncio.gather(*(processor.process(r) for r in records))
                else:
                    order = self._orders.setdefault(stage, InOrder())
                    await order.turn(ticket)
                    made = [await processor.process(r) for r in records]
                    order.leave(ticket)
                outputs: list[Record] = []
                for current, outs in zip(records, made, strict=True):
                    for out in outs:
                        out = carry_headers(current, out)
                        (outputs if out.destination is None else routed).append(out)
                records = outputs
            if self.sink is not None:
                if sink_batches:  # it orders its own writes
                    if len(records) == 1:  # the common case: no task for one write
                        await self.sink.write(records[0])
                    else:
                        await asyncio.gather(*(self.sink.write(r) for r in records))
                    return routed
                order = self._orders.setdefault(len(self.processors), InOrder())
                await order.turn(ticket)
                for current in records:
                    await self.sink.write(current)
                return routed
            return routed + records
        finally:
            for stage in range(len(self.processors) + 1):
                gate = self._orders.get(stage)
                if gate is None:
                    gate = self._orders[stage] = InOrder()
                gate.leave(ticket)
