"""LangStream's flow-control agents: ``dispatch``, ``trigger-event``, ``log-event`` (processors)
and ``timer-source`` (a source).

``dispatch`` and ``trigger-event`` send records to other topics by giving them a
:attr:`sluice.record.Record.destination`: the executor writes such a record to that topic instead
of its output, and acknowledges it before the input's offset is committed (at least once). A
routed record leaves a fused chain at once; the agents after this one do not see it.

Conditions (``when``) are predicates of the expression language: a name the record lacks makes
them false; any other evaluation error fails the record, and the agent's ``errors`` policy
decides what happens to it (``log-event`` excepted: it never fails a record).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable
from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Expression, Predicate, compile_expression, compile_predicate
from sluice.record import Record
from sluice.templates import Template, compile_template
from workers.builtin.records import (
    WorkingRecord,
    context_of,
    set_field,
    template_view,
    to_record,
    to_working,
)

log = logging.getLogger("sluice.agent.log-event")
timer_log = logging.getLogger("sluice.agent.timer-source")

Fields = tuple[tuple[str, Expression], ...]
"""``fields[]`` compiled: (target field name, expression)."""


def compile_fields(entries: Iterable[dict[str, Any]]) -> Fields:
    return tuple((entry["name"], compile_expression(entry["expression"])) for entry in entries)


def apply_fields(working: WorkingRecord, fields: Fields) -> None:
    """Evaluate every field on ``working`` first, then write each result (LangStream's order:
    no expression sees another field's result)."""
    context = context_of(working)
    results = {name: expression.evaluate(context) for name, expression in fields}
    for name, result in results.items():
        set_field(working, result, name)


class _Processor:
    """Lifecycle hooks with nothing to do."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class Dispatch(_Processor):
    """``dispatch``: the first route whose ``when`` holds decides where the record goes.

    ``action: dispatch`` sends the record, unchanged, to the route's ``destination``;
    ``action: drop`` drops it. A record no route takes goes on to the agent's output unchanged.
    """

    routes: tuple[tuple[Predicate, str | None], ...] = ()

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("dispatch", config)
        self.routes = tuple(
            (
                compile_predicate(route["when"]),
                None if route["action"] == "drop" else route["destination"],
            )
            for route in checked["routes"]
        )

    async def process(self, record: Record) -> list[Record]:
        if not self.routes:
            return [record]
        context = context_of(to_working(record))
        for when, destination in self.routes:
            if when.test(context):
                return [] if destination is None else [record.to(destination)]
        return [record]


class TriggerEvent(_Processor):
    """``trigger-event``: when ``when`` holds, a copy of the record with ``fields`` written goes
    to ``destination``; the original goes on unless ``continue-processing`` is false.

    When ``when`` does not hold, the original goes on whatever ``continue-processing`` says.
    The copy's value and key stay JSON objects (written as JSON) when they were.
    """

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("trigger-event", config)
        self.destination: str = checked["destination"]
        self.when = compile_predicate(checked["when"])
        self.continue_processing: bool = checked["continue-processing"]
        self.fields = compile_fields(checked["fields"])

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        if not self.when.test(context_of(working)):
            return [record]
        working = copy.deepcopy(working)
        apply_fields(working, self.fields)
        working.value_form = working.key_form = "as-is"
        event = to_record(working, record).to(self.destination)
        return [event, record] if self.continue_processing else [event]


class LogEvent(_Processor):
    """``log-event``: log the record (or its ``fields``, and/or its ``message``) when ``when``
    holds; the record always goes on unchanged, and an error while logging is only logged.

    The logger is ``sluice.agent.log-event`` at INFO. ``message`` is a Mustache template over
    ``key``, ``value``, ``properties``, ``topicName``, ``destinationTopic``, ``eventTime``.
    """

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("log-event", config)
        self.when = compile_predicate(checked["when"])
        self.fields = compile_fields(checked["fields"])
        message: str = checked["message"]
        self.message: Template | None = compile_template(message) if message else None

    async def process(self, record: Record) -> list[Record]:
        try:
            self._log(record)
        except Exception as error:
            log.error("log-event could not log a record: %s: %s", type(error).__name__, error)
        return [record]

    def _log(self, record: Record) -> None:
        working = to_working(record)
        context = context_of(working)
        if not self.when.test(context):
            return
        if not self.fields and self.message is None:
            log.info("%s", describe_record(record))
            return
        if self.fields:
            values = {name: expression.evaluate(context) for name, expression in self.fields}
            log.info("%s", values)
        if self.message is not None:
            log.info("%s", self.message.render(template_view(working)))


def describe_record(record: Record) -> str:
    """One line for a log: the record's key, value, headers, origin and timestamp."""
    return (
        f"Record(key={record.key!r}, value={record.value!r}, headers={dict(record.headers)!r}, "
        f"origin={record.origin!r}, timestamp={record.timestamp!r})"
    )


class TimerSource:
    """``timer-source``: every ``period-seconds`` (the first one period after start) a record
    whose key and value are JSON objects built by ``fields`` (from empty ones).

    :meth:`read` waits for the next tick but never longer than :attr:`MAX_WAIT` seconds, so the
    worker stops promptly; ticks keep a fixed rate, and ticks missed while the pipeline was
    slow are dropped rather than made up in a burst. A field that cannot be evaluated loses
    that tick's record (logged), as in LangStream. Commit has nothing to do.
    """

    MAX_WAIT = 0.5
    """How long one :meth:`read` waits at most before it returns nothing."""
    EARLY = 1.5
    """A tick this close is waited for in full: the source executor's pause after an empty
    read (at most a second) never makes it late."""

    def __init__(self) -> None:
        self.period = 60.0
        self.fields: Fields = ()
        self._due = 0.0

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration("timer-source", config)
        self.period = float(checked["period-seconds"])
        self.fields = compile_fields(checked["fields"])

    async def start(self) -> None:
        self._due = time.monotonic() + self.period

    async def close(self) -> None:
        pass

    async def read(self) -> list[Record]:
        wait = self._due - time.monotonic()
        if wait > self.EARLY:
            await asyncio.sleep(min(wait - self.EARLY, self.MAX_WAIT))
            return []
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.monotonic()
        self._due += self.period
        if self._due <= now:
            self._due = now + self.period
        try:
            return [self.make_record()]
        except Exception as error:
            timer_log.error("timer-source could not make a record: %s", error)
            return []

    def make_record(self) -> Record:
        """One record: key and value ``{}`` with the fields written."""
        working = WorkingRecord(value={}, key={})
        apply_fields(working, self.fields)
        return to_record(working, Record({}, key={}))

    async def commit(self, records: list[Record]) -> None:
        pass

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        timer_log.warning("a timer-source record failed for good: %s", error)
