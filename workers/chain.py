"""A fused chain of agents run in memory: processors one after the other, then a sink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Chain:
    """Processors in order, then an optional sink. Outputs carry their input's headers.

    An output with a ``destination`` leaves the chain where it was made: the later processors
    and the sink do not see it, and it is returned for its topic.
    """

    processors: Sequence[LoadedProcessor] = ()
    sink: LoadedSink | None = None

    @property
    def window(self) -> int:
        """How many records may be in the chain at once: 1, unless an agent gathers records
        into batches (:class:`workers.agents.Batching`), whose outputs the executors still
        write in input order."""
        agents: list[object] = [*self.processors, self.sink]
        return max(
            [1, *(agent.records_in_flight for agent in agents if isinstance(agent, Batching))]
        )

    async def run(self, record: Record) -> list[Record]:
        """The records to write: each to its ``destination``, else to the output topic (the
        sink, when the chain ends with one, takes those)."""
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
