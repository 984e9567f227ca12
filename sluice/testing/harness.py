"""The agent harness: a user's agent run in memory by the worker's own chain and error policy.

A record fed to the harness takes the path a record takes in a pull-mode worker, minus Kafka:
it is encoded as the CloudEvent a gateway writes and decoded as the worker's consumer decodes it
(so the agent sees the same types it will see in production), run by
:class:`workers.chain.Chain` under :func:`workers.policy.attempt` (retries, ``Retry``,
``SkipRecord``, ``FatalError``), and its outputs are encoded as the worker writes them and decoded
as a consumer of the output topic reads them. What a failure leads to (skip, dead letter, stop)
is decided by :func:`workers.policy.after_failure`, as in the worker. User classes are adapted by
:func:`workers.adapters.adapt`, the loader the worker uses, so LangStream-shaped classes (no base
class, ``SimpleRecord``, dict or tuple records, futures, ``async def`` hooks) behave as in the
worker.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import httpx

from langstream.api import Record as LangStreamRecord
from sluice.application import load_application, plan_application
from sluice.application.agent_types import AGENT_TYPES
from sluice.application.model import ErrorsSpec
from sluice.application.plan import DEAD_LETTER_SUFFIX
from sluice.errors import SluiceError
from sluice.events import (
    ConsumedRecord,
    UnencodableRecord,
    WireMessage,
    agent_source,
    from_kafka,
    to_kafka,
)
from sluice.record import Record
from sluice.sdk import AgentContext, Processor, Service, Sink, Source
from sluice.testing.results import Delivery, Results
from workers.adapters import adapt, to_record
from workers.agents import (
    LoadedAgent,
    LoadedProcessor,
    LoadedService,
    LoadedSink,
    LoadedSource,
    UsesContext,
)
from workers.builtin import BUILTIN_AGENTS
from workers.chain import Chain
from workers.errors import ExecutorFailed
from workers.loading import PYTHON_AGENT_TYPES, instantiate
from workers.policy import (
    Backoff,
    DeadLetter,
    Done,
    Drop,
    Failed,
    Skipped,
    after_failure,
    attempt,
    stopped,
)

Component = Literal["processor", "source", "sink", "service"]

_RECORD_KEYS = frozenset({"value", "key", "headers", "origin", "timestamp"})


class HarnessError(SluiceError, RuntimeError):
    """The harness was used wrongly: the wrong call for the agent's kind, a bad option."""


def errors_spec(errors: Mapping[str, Any] | ErrorsSpec | None) -> ErrorsSpec:
    """An ``errors`` policy from the mapping a pipeline's ``errors:`` block holds.

    >>> errors_spec({"retries": 2, "on-failure": "dead-letter"})
    ErrorsSpec(on_failure='dead-letter', retries=2)
    >>> errors_spec(None)  # the worker's default: no retry, stop on failure
    ErrorsSpec(on_failure='fail', retries=0)
    """
    if errors is None:
        return ErrorsSpec()
    if isinstance(errors, ErrorsSpec):
        return errors
    unknown = sorted(str(k) for k in errors if k not in ("retries", "on-failure"))
    if unknown:
        raise HarnessError(
            f"errors has unknown key(s) {', '.join(unknown)} (allowed: retries, on-failure)"
        )
    on_failure = errors.get("on-failure", "fail")
    if on_failure not in ("fail", "skip", "dead-letter"):
        raise HarnessError(
            f"errors.on-failure is {on_failure!r}: expected 'fail', 'skip' or 'dead-letter'"
        )
    retries = errors.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise HarnessError(f"errors.retries is {retries!r}: expected an integer >= 0")
    return ErrorsSpec(on_failure=on_failure, retries=retries)


def as_record(item: Any) -> Record:
    """A test input as a record.

    A :class:`sluice.Record` or a LangStream record is taken as it is; a dict whose keys are all
    record fields and include ``value`` (``{"value": ..., "headers": {...}}``) describes a record;
    anything else (a string, a number, any other dict) is the value of a record without key or
    headers. To send a JSON value that itself looks like a record dict, wrap it in a ``Record``.

    >>> as_record("hi").value, as_record("hi").headers
    ('hi', mappingproxy({}))
    >>> as_record({"value": "hi", "headers": {"session": "s1"}}).headers["session"]
    's1'
    >>> as_record({"question": "why?"}).value
    {'question': 'why?'}
    """
    if isinstance(item, Record | LangStreamRecord):
        return to_record(item)
    if isinstance(item, dict) and "value" in item and set(item) <= _RECORD_KEYS:
        return to_record(item)
    return Record(item)


def infer_component(agent: object) -> Component:
    """Which kind of agent ``agent`` is: by its Sluice base class, else by the hook it has
    (``process``, ``read``, ``write``, ``app``/``main``), as LangStream classes need no base."""
    for base, kind in ((Processor, "processor"), (Source, "source"), (Sink, "sink")):
        if isinstance(agent, base):
            return cast(Component, kind)
    if isinstance(agent, Service):
        return "service"
    for hook, kind in (("process", "processor"), ("read", "source"), ("write", "sink")):
        if callable(getattr(agent, hook, None)):
            return cast(Component, kind)
    if callable(getattr(agent, "app", None)) or callable(getattr(agent, "main", None)):
        return "service"
    raise HarnessError(
        f"{type(agent).__qualname__} has none of process(), read(), write(), app() or main(): "
        "pass component= to say what it is"
    )


class MemoryTopicProducer:
    """``context.get_topic_producer()`` in the harness: keeps what the agent writes.

    Records are encoded as the worker's producer encodes them (an unencodable record raises
    :class:`sluice.events.UnencodableRecord` in the agent, as it would in the worker) and kept
    as a consumer of the topic would read them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, source: str) -> None:
        self._loop = loop
        self._source = source
        self.writes: list[tuple[str, Record]] = []

    async def awrite(self, topic: str, record: Record) -> None:
        """Send from async code."""
        self._keep(topic, record)

    def write(self, topic: str, record: Record) -> Future[None]:
        """Send from sync code (a hook the runtime runs in a worker thread)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            # The worker's producer would deadlock here: say so in tests too.
            raise RuntimeError(
                "TopicProducer.write() blocks: call it from sync code, or use await awrite()"
            )
        done: Future[None] = Future()
        try:
            self._keep(topic, record)
        except Exception as error:
            done.set_exception(error)
        else:
            done.set_result(None)
        return done

    def _keep(self, topic: str, record: Record) -> None:
        message = to_kafka(to_record(record), source=self._source)
        self.writes.append((topic, _read_back(message, topic, len(self.writes))))


def _read_back(message: WireMessage, topic: str, offset: int = 0) -> Record:
    """The record a consumer of ``topic`` reads from ``message``."""
    consumed = from_kafka(message, topic=topic, partition=0, offset=offset)
    assert isinstance(consumed, ConsumedRecord), "a message the worker writes always decodes"
    return consumed.record


class _RecordingSink:
    """A sink that notes each record its ``write`` accepted, for :attr:`Delivery.written`."""

    def __init__(self, sink: LoadedSink) -> None:
        self._sink = sink
        self.written: list[Record] = []

    async def init(self, config: dict[str, Any]) -> None:
        await self._sink.init(config)

    async def start(self) -> None:
        await self._sink.start()

    async def close(self) -> None:
        await self._sink.close()

    async def write(self, record: Record) -> None:
        await self._sink.write(record)
        self.written.append(record)


@dataclass
class _Attempts:
    """The sleep given to :func:`workers.policy.attempt`: notes each delay, waits for none."""

    delays: list[float] = field(default_factory=list)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class AgentHarness:
    """One agent, initialised and started, fed records in memory; ``async with`` it.

    Args:
        agent: the agent: an instance of your class (``Upper()``), or its ``className``
            (``"my_app.Upper"``) as ``pipeline.yaml`` names it, imported like the worker
            imports it (with ``app_dir``'s ``python/`` and ``python/lib`` folders at the front
            of ``sys.path``) and made with no arguments; or the type of a built-in agent
            (``"drop-fields"``), run as the worker runs it.
        app_dir: the application folder, for a ``className``.
        config: the agent's ``configuration`` block, given to ``init``. As in the worker,
            ``resources`` and ``globals`` are added when absent.
        errors: the ``errors`` policy, as in ``pipeline.yaml``: ``{"retries": 2,
            "on-failure": "dead-letter"}``. The default is the worker's: no retry, and a failure
            stops the agent (:class:`~sluice.testing.ExecutorFailed` is raised).
        component: ``"processor"``, ``"source"``, ``"sink"`` or ``"service"``; guessed from the
            class (its Sluice base class, else the hook it has) when not given.
        state_dir: the directory ``context.get_persistent_state_directory()`` returns (created
            if missing); None, the default, is an agent without ``resources.disk``.
        agent_id, application, tenant, globals: what the agent's context says.
        input_topic, output_topic: the topic names records carry (``origin``, dead-letter
            headers); the dead-letter topic is ``<input_topic>-deadletter``.
        backoff: the retry backoff whose delays :attr:`Delivery.delays` reports (never waited).

    The agent's ``init`` and ``start`` run on entering the ``async with``, ``close`` on leaving.
    :attr:`history` gathers the results of every call, which helps after a call raised.

    >>> import asyncio
    >>> from sluice import Processor, Record
    >>> class Upper(Processor):
    ...     def process(self, record: Record) -> Record:
    ...         return record.with_value(record.value.upper())
    >>> async def main() -> list[str]:
    ...     async with AgentHarness(Upper()) as harness:
    ...         results = await harness.send("a", {"value": "b", "headers": {"s": "1"}})
    ...     return results.values + [results.outputs[1].headers["s"]]
    >>> asyncio.run(main())
    ['A', 'B', '1']
    """

    def __init__(
        self,
        agent: object,
        *,
        app_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        errors: Mapping[str, Any] | ErrorsSpec | None = None,
        component: Component | None = None,
        state_dir: str | Path | None = None,
        agent_id: str = "agent",
        application: str = "app",
        tenant: str = "default",
        globals: Mapping[str, Any] | None = None,
        input_topic: str = "input",
        output_topic: str = "output",
        backoff: Backoff | None = None,
    ) -> None:
        self._agent = agent
        self._app_dir = Path(app_dir) if app_dir is not None else None
        self._config = dict(config or {})
        self.errors = errors_spec(errors)
        self._component = component
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self.agent_id = agent_id
        self.application = application
        self.tenant = tenant
        self._globals = dict(globals or {})
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.dead_letter_topic = input_topic + DEAD_LETTER_SUFFIX
        self._backoff = backoff or Backoff()
        self.source = agent_source(tenant, application, agent_id)
        """The CloudEvent source of what the agent writes, as the worker sets it."""
        self.history = Results()
        self._loaded: LoadedAgent | None = None
        self._sink: _RecordingSink | None = None
        self._chain = Chain()
        self._producer: MemoryTopicProducer | None = None
        self._offset = 0

    @classmethod
    def from_application(
        cls,
        app_dir: str | Path,
        agent_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        instance: str | Path | None = None,
        secrets: str | Path | None = None,
        **options: Any,
    ) -> AgentHarness:
        """A harness for the agent ``agent_id`` of the application in ``app_dir``, as deployed.

        The application is loaded and planned as ``sluice run`` does (``instance`` and
        ``secrets`` files optional); the agent's ``className``, ``configuration`` (with the
        application's ``resources`` and ``globals``), its executor's ``errors`` policy and
        topics come from it. ``config`` entries replace configuration entries (a test model
        instead of the real one); ``options`` are :class:`AgentHarness`'s (``state_dir``...).

        Raises :class:`sluice.InvalidApplication` for an invalid application and
        :class:`HarnessError` when no Python agent has that id.
        """
        app = load_application(app_dir, instance=instance, secrets=secrets)
        found = [(e, a) for e in plan_application(app).executors for a in e.agents]
        match = next(((e, a) for e, a in found if a.id == agent_id), None)
        if match is None:
            known = ", ".join(a.id for _, a in found) or "none"
            raise HarnessError(f"no agent {agent_id!r} in {app_dir} (agents: {known})")
        executor, agent = match
        class_name = agent.configuration.get("className")
        if agent.type in BUILTIN_AGENTS:
            class_name = agent.type
        elif agent.type not in PYTHON_AGENT_TYPES or not isinstance(class_name, str):
            raise HarnessError(
                f"agent {agent_id} is a {agent.type}: the harness runs built-in agents and "
                "Python agents with configuration.className"
            )
        merged = app.runtime_configuration({**agent.configuration, **(config or {})})
        defaults: dict[str, Any] = {
            "errors": executor.errors,
            "component": agent.component,
            "agent_id": agent.id,
            "application": app.name,
            "globals": app.globals,
            "input_topic": executor.input_topic or "input",
            "output_topic": executor.output_topic or "output",
        }
        return cls(class_name, app_dir=app_dir, config=merged, **{**defaults, **options})

    @property
    def component(self) -> Component:
        """What the agent is (known once the harness is entered)."""
        if self._component is None:
            raise HarnessError("the agent is not loaded yet: use `async with AgentHarness(...)`")
        return self._component

    @property
    def instance(self) -> object:
        """The user's agent object (made from ``className`` when one was given)."""
        if self._loaded is None:
            raise HarnessError("the agent is not loaded yet: use `async with AgentHarness(...)`")
        if isinstance(self._agent, str) and self._agent in BUILTIN_AGENTS:
            return self._loaded
        return cast(Any, self._loaded).instance

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> AgentHarness:
        builtin = BUILTIN_AGENTS.get(self._agent) if isinstance(self._agent, str) else None
        instance = builtin() if builtin is not None else self._instance()
        if self._component is None:
            # Built-in agents implement the runtime's protocol of their component directly.
            if isinstance(self._agent, str) and builtin is not None:
                self._component = AGENT_TYPES[self._agent].component
            else:
                self._component = infer_component(instance)
        if self._state_dir is not None:
            self._state_dir.mkdir(parents=True, exist_ok=True)
        self._producer = MemoryTopicProducer(asyncio.get_running_loop(), self.source)
        context = AgentContext(
            agent_id=self.agent_id,
            tenant=self.tenant,
            application=self.application,
            globals=self._globals,
            state_directory=str(self._state_dir) if self._state_dir is not None else None,
            topic_producer=self._producer,
        )
        if builtin is not None:
            loaded = cast(LoadedAgent, instance)
            # As workers.loading does: langserve-invoke writes with context's topic producer.
            if isinstance(loaded, UsesContext):
                loaded.use_context(context)
        else:
            loaded = adapt(instance, self._component, context, agent_id=self.agent_id)
        self._loaded = loaded
        if self._component == "processor":
            self._chain = Chain([cast(LoadedProcessor, loaded)])
        elif self._component == "sink":
            self._sink = _RecordingSink(cast(LoadedSink, loaded))
            self._chain = Chain(sink=self._sink)
        config = dict(self._config)
        # As the worker passes them: LangStream agents read these from the configuration.
        config.setdefault("resources", {})
        config.setdefault("globals", dict(self._globals))
        await loaded.init(config)
        await loaded.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._loaded is not None:
            loaded, self._loaded = self._loaded, None
            await loaded.close()

    def _instance(self) -> object:
        if not isinstance(self._agent, str):
            if inspect.isclass(self._agent):
                raise HarnessError(
                    f"pass an instance ({self._agent.__qualname__}()) or a className string, "
                    "not the class"
                )
            return self._agent
        class_name = self._agent
        parts = class_name.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts):
            raise HarnessError(f"invalid className {class_name!r}: expected 'module.ClassName'")
        code_dirs = []
        if self._app_dir is not None:
            code_dirs = [self._app_dir / "python", self._app_dir / "python" / "lib"]
        return instantiate(self.agent_id, class_name, code_dirs)

    # -- processors and sinks --------------------------------------------------------------------

    async def send(self, *records: Any) -> Results:
        """Feed records to a processor or a sink, one after the other, as the worker does.

        Each record may be a :class:`sluice.Record`, a LangStream record, a dict describing a
        record (``{"value": ..., "key": ..., "headers": {...}}``) or a plain value (see
        :func:`as_record`). Returns one :class:`Delivery` per record.

        Raises :class:`~sluice.testing.ExecutorFailed` when a record fails under
        ``on-failure: fail`` or the agent raises :class:`sluice.FatalError`; the records before
        it are in :attr:`history`.
        """
        self._expect("processor", "sink", call="send()")
        deliveries: list[Delivery] = []
        writes = len(self._producer_writes())
        try:
            for record in records:
                deliveries.append(await self._deliver(self._consumed(record)))
        finally:
            results = Results(tuple(deliveries), tuple(self._producer_writes()[writes:]))
            self._note(results)
        return results

    def _consumed(self, item: Any) -> ConsumedRecord:
        """``item`` as the worker's consumer would hand it over after a gateway wrote it."""
        record = as_record(item)
        try:
            message = to_kafka(record, source=f"/{self.tenant}/{self.application}/testing")
        except UnencodableRecord as error:
            raise HarnessError(
                f"the test record {record!r} cannot be written to a topic: {error}"
            ) from error
        offset, self._offset = self._offset, self._offset + 1
        message = WireMessage(message.key, message.value, message.headers, _now())
        consumed = from_kafka(message, topic=self.input_topic, partition=0, offset=offset)
        assert isinstance(consumed, ConsumedRecord), "a message the worker writes always decodes"
        return consumed

    async def _deliver(self, item: ConsumedRecord) -> Delivery:
        """The pull-mode worker's handling of one record (``workers.pull``), in memory."""
        what = f"record {item.topic}/{item.partition}@{item.offset}"
        waits = _Attempts()
        written = len(self._sink.written) if self._sink is not None else 0
        outcome = await attempt(
            lambda: self._chain.run(item.record),
            self.errors,
            self._backoff,
            what=what,
            sleep=waits.sleep,
        )
        delays = tuple(waits.delays)
        attempts = len(delays) + 1
        sunk = tuple(self._sink.written[written:]) if self._sink is not None else ()
        if isinstance(outcome, Skipped):
            return Delivery(item.record, "skipped", written=sunk, attempts=attempts, delays=delays)
        if isinstance(outcome, Done):
            try:
                outputs = self._read_outputs(outcome.value)
            except UnencodableRecord as error:
                # The worker encodes before writing: a bad output is a failure of its input.
                outcome = Failed(error, 1)
            else:
                return Delivery(
                    item.record, "done", outputs, sunk, attempts=attempts, delays=delays
                )
        return self._failed(item, outcome, sunk, delays, what)

    def _read_outputs(self, records: list[Record]) -> tuple[Record, ...]:
        """``records`` as consumers of their topics read them (each at its destination, else
        at the output topic); raises :class:`UnencodableRecord` as the worker would."""
        messages = [(out.destination, to_kafka(out, source=self.source)) for out in records]
        return tuple(_read_back(m, topic or self.output_topic) for topic, m in messages)

    def _failed(
        self,
        item: ConsumedRecord,
        failed: Failed,
        sunk: tuple[Record, ...],
        delays: tuple[float, ...],
        what: str,
    ) -> Delivery:
        decision = after_failure(
            item, failed, self.errors, self.dead_letter_topic, source=self.source
        )
        common: dict[str, Any] = {
            "written": sunk,
            "error": failed.error,
            "attempts": failed.attempts,
            "delays": delays,
        }
        if isinstance(decision, Drop):
            return Delivery(item.record, "skipped", **common)
        if isinstance(decision, DeadLetter):
            letter = _read_back(decision.message, decision.topic, item.offset)
            return Delivery(item.record, "dead-lettered", dead_letter=letter, **common)
        raise stopped(what, failed) from failed.error

    # -- sources ---------------------------------------------------------------------------------

    async def read(self, count: int | None = None, *, max_reads: int = 1000) -> Results:
        """Call a source's ``read()`` and deliver each batch as the worker does.

        Reads until ``count`` records were read (the last batch is delivered whole), or, with
        ``count`` None, until a ``read()`` returns no record. Each batch's records are written
        to the output topic (a record that cannot be encoded, or that fails under
        ``on-failure: skip`` or ``dead-letter``, goes to the source's ``permanent_failure``
        hook), then the batch's written records are handed to ``commit``, in order.

        Raises :class:`HarnessError` when ``count`` records are not read within ``max_reads``
        calls (the worker would keep polling), and :class:`~sluice.testing.ExecutorFailed` as
        :meth:`send` does.
        """
        source = cast(LoadedSource, self._expect("source", call="read()"))
        deliveries: list[Delivery] = []
        committed: list[Record] = []
        writes = len(self._producer_writes())
        try:
            for _ in range(max_reads):
                if count is not None and len(deliveries) >= count:
                    break
                batch = await source.read()
                if not batch:
                    if count is None:
                        break
                    continue
                delivered, accepted = await self._source_batch(source, batch)
                deliveries.extend(delivered)
                if accepted:
                    await source.commit(accepted)
                    committed.extend(accepted)
            else:
                if count is not None and len(deliveries) < count:
                    raise HarnessError(
                        f"the source gave {len(deliveries)} record(s) in {max_reads} read() "
                        f"calls, not {count}"
                    )
        finally:
            results = Results(
                tuple(deliveries), tuple(self._producer_writes()[writes:]), tuple(committed)
            )
            self._note(results)
        return results

    async def _source_batch(
        self, source: LoadedSource, batch: list[Record]
    ) -> tuple[list[Delivery], list[Record]]:
        """``workers.sources.SourceExecutor``'s delivery of one batch, in memory."""
        deliveries: list[Delivery] = []
        accepted: list[Record] = []
        for record in batch:
            waits = _Attempts()
            outcome = await attempt(
                lambda record=record: self._chain.run(record),  # type: ignore[misc]
                self.errors,
                self._backoff,
                what="source record",
                sleep=waits.sleep,
            )
            delays = tuple(waits.delays)
            if isinstance(outcome, Failed):
                if self.errors.on_failure == "fail":
                    raise ExecutorFailed(
                        f"a source record failed: {outcome.error}"
                    ) from outcome.error
                deliveries.append(await self._give_up(source, record, outcome.error, delays))
                continue
            outputs: tuple[Record, ...] = ()
            if isinstance(outcome, Done):
                try:
                    outputs = self._read_outputs(outcome.value)
                except UnencodableRecord as error:
                    deliveries.append(await self._give_up(source, record, error, delays))
                    continue
            kind: Literal["done", "skipped"] = "done" if isinstance(outcome, Done) else "skipped"
            deliveries.append(
                Delivery(record, kind, outputs, attempts=len(delays) + 1, delays=delays)
            )
            accepted.append(record)
        return deliveries, accepted

    async def _give_up(
        self,
        source: LoadedSource,
        record: Record,
        error: BaseException,
        delays: tuple[float, ...],
    ) -> Delivery:
        failure = error if isinstance(error, Exception) else RuntimeError(str(error))
        await source.permanent_failure(record, failure)
        return Delivery(
            record, "permanent-failure", error=error, attempts=len(delays) + 1, delays=delays
        )

    # -- services --------------------------------------------------------------------------------

    def client(self, **options: Any) -> httpx.AsyncClient:
        """An HTTP client calling the service's ASGI app (from its ``app()``) in memory.

        ``options`` go to :class:`httpx.AsyncClient` (``base_url`` defaults to
        ``http://testserver``). Use it as ``async with harness.client() as http``. The app's
        lifespan events are not sent (httpx's ASGI transport does not send them). A service
        that runs its own server from ``main()`` (LangStream's style) cannot be called this way:
        run it with ``sluice run``.
        """
        service = cast(LoadedService, self._expect("service", call="client()"))
        app = service.app()
        if app is None:
            raise HarnessError(
                f"{type(self.instance).__qualname__} has no app() returning an ASGI app; a "
                "main()-style service runs its own server and is tested with sluice run"
            )
        options.setdefault("base_url", "http://testserver")
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), **options)

    # -- helpers ---------------------------------------------------------------------------------

    def _expect(self, *components: Component, call: str) -> LoadedAgent:
        if self._loaded is None:
            raise HarnessError(f"{call} needs the agent loaded: use `async with AgentHarness(...)`")
        if self._component not in components:
            raise HarnessError(
                f"{call} is for a {' or '.join(components)}; this agent is a {self._component}"
            )
        return self._loaded

    def _producer_writes(self) -> list[tuple[str, Record]]:
        return self._producer.writes if self._producer is not None else []

    def _note(self, results: Results) -> None:
        self.history = self.history + results


def _now() -> int:
    return int(time.time() * 1000)


# -- one-call helpers for synchronous tests ------------------------------------------------------


def run_processor(agent: object, records: Iterable[Any], **options: Any) -> Results:
    """Run a processor on ``records`` and return what it did; for plain (sync) test functions.

    ``agent`` is an instance, a ``className`` or a harness not yet entered (such as
    :meth:`AgentHarness.from_application` returns); ``options`` are :class:`AgentHarness`'s
    (``config``, ``errors``, ``app_dir``, ``state_dir``...). The agent is initialised, started,
    given the records and closed.
    Raises :class:`~sluice.testing.ExecutorFailed` as :meth:`AgentHarness.send` does. Inside an
    async test, use ``async with AgentHarness(...)`` instead.

    >>> from sluice import Processor, Record, SkipRecord
    >>> class Greet(Processor):
    ...     def init(self, config, context):
    ...         self.greeting = config["greeting"]
    ...     def process(self, record):
    ...         if not record.value:
    ...             raise SkipRecord("nothing to greet")
    ...         return record.with_value(f"{self.greeting}, {record.value}")
    >>> results = run_processor(Greet(), ["Ann", "", "Bo"], config={"greeting": "Hi"})
    >>> results.values, [r.value for r in results.skipped]
    (['Hi, Ann', 'Hi, Bo'], [''])
    """
    return _run(agent, "processor", options, lambda h: h.send(*records))


def run_sink(agent: object, records: Iterable[Any], **options: Any) -> Results:
    """Give ``records`` to a sink; :attr:`Results.written` lists what its ``write`` accepted.

    >>> class Collect:  # LangStream style: no base class
    ...     def init(self, config):
    ...         self.seen = []
    ...     def write(self, record):
    ...         self.seen.append(record.value())
    >>> [r.value for r in run_sink(Collect(), ["a", {"value": "b"}]).written]
    ['a', 'b']
    """
    return _run(agent, "sink", options, lambda h: h.send(*records))


def run_source(agent: object, count: int | None = None, **options: Any) -> Results:
    """Read from a source as :meth:`AgentHarness.read` does; outputs and commits in the results.

    >>> from sluice import Record, Source
    >>> class Count(Source):
    ...     def init(self, config, context):
    ...         self.left = config["records"]
    ...     def read(self):
    ...         self.left -= 1
    ...         return [Record(self.left)] if self.left >= 0 else []
    >>> results = run_source(Count(), config={"records": 3})
    >>> results.values, [r.value for r in results.committed]
    ([2, 1, 0], [2, 1, 0])
    """
    return _run(agent, "source", options, lambda h: h.read(count))


def _run(agent: object, component: Component, options: dict[str, Any], call: Any) -> Results:
    if isinstance(agent, AgentHarness) and options:
        raise HarnessError(
            f"run_{component}() got an AgentHarness and options ({', '.join(sorted(options))}): "
            "give the options to the harness"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HarnessError(
            f"run_{component}() runs its own event loop: in an async test, use "
            "`async with AgentHarness(...) as harness` and await its methods"
        )
    if isinstance(agent, AgentHarness):
        harness = agent
    else:
        harness = AgentHarness(agent, **{"component": component, **options})

    async def go() -> Results:
        async with harness:
            return cast(Results, await call(harness))

    return asyncio.run(go())


__all__ = [
    "AgentHarness",
    "Component",
    "HarnessError",
    "MemoryTopicProducer",
    "as_record",
    "errors_spec",
    "infer_component",
    "run_processor",
    "run_sink",
    "run_source",
]
