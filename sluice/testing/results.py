"""What a test harness run returns: one :class:`Delivery` per input record, gathered in
:class:`Results`.

Records in results are shown the way the rest of the application would see them: outputs and
dead letters as a consumer of their topic decodes them (a tuple value becomes a list, a dict value
stays a dict, headers are strings), inputs as the agent received them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sluice.record import Record

Outcome = Literal["done", "skipped", "dead-lettered", "permanent-failure"]
"""What became of one input record.

``done``: the agent succeeded (its outputs, possibly none, were written). ``skipped``: the agent
raised :class:`sluice.SkipRecord`, or it failed and ``errors.on-failure`` is ``skip``.
``dead-lettered``: it failed and the input was written to the dead-letter topic.
``permanent-failure``: a source's record failed; its ``permanent_failure`` hook was called.
A failure under ``on-failure: fail`` is not an outcome: the harness raises
:class:`~sluice.testing.ExecutorFailed`, as the worker stops.
"""


@dataclass(frozen=True)
class Delivery:
    """The fate of one input record.

    Attributes:
        input: the record the agent received (for a source, the record it read).
        outcome: see :data:`Outcome`.
        outputs: what was written, as a consumer reads them; a record an agent sent to
            another topic (``dispatch``, ``trigger-event``) has that topic as its ``origin``,
            the others the output topic. Empty for a sink, a skip or a failure.
        written: what a sink's ``write`` accepted (empty for other agents). A record written,
            then retried because a later step failed, appears once per successful write, as
            it would reach the outside world.
        dead_letter: the record written to ``<input>-deadletter``: the input with the headers
            ``error-class``, ``error-message``, ``origin-topic``, ``origin-partition`` and
            ``origin-offset``.
        error: the last exception of a failure (None when the agent succeeded or raised
            ``SkipRecord``).
        attempts: how many times the agent was called for this record.
        delays: the backoff, in seconds, the worker would have waited before each retry (the
            harness does not wait).
    """

    input: Record
    outcome: Outcome
    outputs: tuple[Record, ...] = ()
    written: tuple[Record, ...] = ()
    dead_letter: Record | None = None
    error: BaseException | None = None
    attempts: int = 1
    delays: tuple[float, ...] = ()


@dataclass(frozen=True)
class Results:
    """Everything one harness call did, in input order.

    Iterating gives the :class:`Delivery` of each input; the properties flatten them.

    Attributes:
        deliveries: one per input record (for a source: per record read).
        topic_writes: ``(topic, record)`` pairs the agent wrote with
            ``context.get_topic_producer()``, as consumers of those topics read them.
        committed: for a source, the records handed to its ``commit`` hook, in order.
    """

    deliveries: tuple[Delivery, ...] = ()
    topic_writes: tuple[tuple[str, Record], ...] = ()
    committed: tuple[Record, ...] = ()

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.deliveries)

    def __len__(self) -> int:
        return len(self.deliveries)

    @property
    def outputs(self) -> list[Record]:
        """Every record written to the output topic, in order."""
        return [out for d in self.deliveries for out in d.outputs]

    @property
    def values(self) -> list[Any]:
        """The values of :attr:`outputs`: the shortest way to assert on a processor."""
        return [out.value for out in self.outputs]

    @property
    def written(self) -> list[Record]:
        """Every record a sink's ``write`` accepted, in order."""
        return [w for d in self.deliveries for w in d.written]

    @property
    def dead_letters(self) -> list[Record]:
        """The records written to the dead-letter topic, with their error headers."""
        return [d.dead_letter for d in self.deliveries if d.dead_letter is not None]

    @property
    def skipped(self) -> list[Record]:
        """The inputs skipped: by ``SkipRecord``, or failed under ``on-failure: skip``."""
        return [d.input for d in self.deliveries if d.outcome == "skipped"]

    @property
    def errors(self) -> list[BaseException]:
        """The final exception of every input that failed, whatever became of it."""
        return [d.error for d in self.deliveries if d.error is not None]

    def __add__(self, other: Results) -> Results:
        return Results(
            self.deliveries + other.deliveries,
            self.topic_writes + other.topic_writes,
            self.committed + other.committed,
        )
