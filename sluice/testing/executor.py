"""A whole planned executor run in memory: the fused chain of agents one worker process runs.

The planner fuses neighbouring agents of a pipeline (``compute``, ``drop``, your
``python-processor``, ``document-to-json``...) into one executor; a worker runs them as one chain
(:class:`workers.chain.Chain`): each record goes through the processors in order, a record an
agent routed elsewhere (``dispatch``, ``trigger-event``, ``compute``'s ``destinationTopic``)
leaves the chain at once for its topic, the rest go to the output topic or to the sink the
executor ends with. :class:`ExecutorHarness` runs that chain on in-memory records with the
worker's own loader (:func:`workers.loading.load_agent`: built-in agents by type, Python agents by
``className``, each given its context), the executor's ``errors`` policy (a failure anywhere in
the chain is a failure of the input record: retried whole, then skipped, dead-lettered or
fatal), the CloudEvent encoding, and a :class:`~sluice.testing.MemoryTopicProducer` shared by
the agents, as the worker's topic producer is. Make one with
:meth:`ExecutorHarness.from_application`.

>>> import asyncio, tempfile, textwrap
>>> from pathlib import Path
>>> from sluice.testing import ExecutorHarness
>>> app = Path(tempfile.mkdtemp())
>>> _ = (app / "pipeline.yaml").write_text(textwrap.dedent('''
...     topics:
...       - {name: questions, creation-mode: create-if-not-exists}
...       - {name: answers, creation-mode: create-if-not-exists}
...     pipeline:
...       - id: tag
...         type: compute
...         input: questions
...         configuration:
...           fields: [{name: properties.lang, expression: "'en'"}]
...       - id: quiet
...         type: drop
...         configuration: {when: "fn:length(value) == 0"}
...       - id: wrap
...         type: document-to-json
...         output: answers
... '''))
>>> async def main():
...     async with ExecutorHarness.from_application(app, "quiet") as harness:
...         return await harness.send("hello", "")
>>> results = asyncio.run(main())
>>> [(r.value, r.origin) for r in results.outputs]
[('{"text":"hello","lang":"en"}', 'answers')]
>>> [d.outcome for d in results], results.deliveries[1].outputs  # "" was dropped
(['done', 'done'], ())
>>> import shutil; shutil.rmtree(app)

A source executor (a source and the processors fused after it) is read with
:meth:`~sluice.testing.AgentHarness.read`, a service executor called with
:meth:`~sluice.testing.AgentHarness.client`, as with one agent. Not covered, as for one agent:
``configuration.environment`` (set the variables in your test), an output's size against its
topic's ``max.message.bytes``, and whether a ``destination`` topic exists on the cluster (the
worker fails such a record; the harness writes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from sluice.application import Application, Executor, load_application, plan_application
from sluice.application.model import ErrorsSpec
from sluice.application.plan import PlannedAgent
from sluice.events import to_kafka
from sluice.record import Record
from sluice.sdk import AgentContext
from sluice.testing.harness import (
    AgentHarness,
    HarnessError,
    MemoryTopicProducer,
    _read_back,
    _RecordingSink,
)
from workers.agents import LoadedAgent, LoadedProcessor, LoadedSink
from workers.chain import Chain
from workers.loading import load_agent
from workers.policy import Backoff

__all__ = ["ExecutorHarness"]


class ExecutorHarness(AgentHarness):
    """Every agent of one planned executor, loaded, initialised and started; ``async with`` it.

    Records are fed with :meth:`send` (processor and sink executors) or read with :meth:`read`
    (source executors); the results are :class:`~sluice.testing.Results`, as for one agent:
    outputs as consumers of their topics read them (a routed record has its destination as
    ``origin``), dead letters, what the final sink wrote (:attr:`Delivery.written`) and what the
    agents wrote with their topic producer (:attr:`Results.topic_writes`).

    Args:
        app: the loaded application (``sluice.application.load_application``).
        executor: one executor of its plan (``plan_application(app).executors``).
        app_dir: the application folder, whose ``python/`` and ``python/lib`` folders hold the
            Python agents' code.
        config: agent id -> entries replacing entries of that agent's configuration (a test
            model instead of the real one). As in the worker, ``resources`` and ``globals`` are
            added when absent.
        errors: the ``errors`` policy; the executor's (from ``pipeline.yaml``) by default.
        state_dir: a folder for the agents that declare ``resources.disk``: each gets
            ``<state_dir>/<agent id>``. When None, each such agent gets a temporary folder,
            removed when the harness closes.
        tenant: the tenant the agents' contexts name.
        backoff: the retry backoff whose delays :attr:`Delivery.delays` reports (never waited).

    Topics are the executor's: records come from its input topic, unrouted outputs go to its
    output topic, failures to ``<input>-deadletter``. An executor whose last agent names no
    output topic writes only routed records, as the worker does: the others are discarded
    (:attr:`Delivery.outputs` does not show them). CloudEvents it writes have the last agent
    as their ``source``, as the worker's.

    The agents start in pipeline order (``init`` then ``start`` each) on entering the ``async
    with``, and close in reverse order on leaving; an agent failing to start closes the ones
    already started.
    """

    def __init__(
        self,
        app: Application,
        executor: Executor,
        *,
        app_dir: str | Path,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        errors: Mapping[str, Any] | ErrorsSpec | None = None,
        state_dir: str | Path | None = None,
        tenant: str = "default",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            executor.id,
            app_dir=app_dir,
            errors=executor.errors if errors is None else errors,
            component=executor.component,
            agent_id=executor.agents[-1].id,
            application=app.name,
            tenant=tenant,
            globals=app.globals,
            input_topic=executor.input_topic or "input",
            output_topic=executor.output_topic or "output",
            backoff=backoff,
        )
        self.app = app
        self.executor = executor
        self._overrides = _overrides(executor, config)
        self._state_root = Path(state_dir) if state_dir is not None else None
        self._temporary: Path | None = None
        self._started: list[tuple[PlannedAgent, LoadedAgent]] = []

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
    ) -> ExecutorHarness:
        """The executor ``agent_id`` names (an executor's id, or the id of any of its agents) in
        the application in ``app_dir``, loaded and planned as ``sluice run`` does (``instance``
        and ``secrets`` files optional).

        ``config`` maps agent ids to configuration entries to replace; ``options`` are the
        constructor's. Raises :class:`sluice.InvalidApplication` for an invalid application
        and :class:`HarnessError` when no executor or agent has that id.
        """
        app = load_application(app_dir, instance=instance, secrets=secrets)
        plan = plan_application(app)
        executor = plan.executor(agent_id) or plan.executor_of(agent_id)
        if executor is None:
            known = "; ".join(
                f"{e.id} ({', '.join(a.id for a in e.agents)})" for e in plan.executors
            )
            raise HarnessError(
                f"no executor or agent {agent_id!r} in {app_dir} (executors and their agents: "
                f"{known or 'none'})"
            )
        return cls(app, executor, app_dir=app_dir, config=config, **options)

    @property
    def instances(self) -> dict[str, object]:
        """Agent id -> the agent object: your class's instance for a Python agent, the
        runtime's object for a built-in one (known once the harness is entered)."""
        if not self._started:
            raise HarnessError("the executor is not loaded yet: use `async with` on the harness")
        return {planned.id: _user_object(loaded) for planned, loaded in self._started}

    @property
    def instance(self) -> object:
        """The agent object of a one-agent executor; use :attr:`instances` for several."""
        instances = self.instances
        if len(instances) != 1:
            raise HarnessError(
                f"executor {self.executor.id} runs {len(instances)} agents "
                f"({', '.join(instances)}): use instances[agent_id]"
            )
        return next(iter(instances.values()))

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> ExecutorHarness:
        if self._started:
            raise HarnessError(f"the harness of executor {self.executor.id} is already open")
        self._producer = MemoryTopicProducer(asyncio.get_running_loop(), self.source)
        code_dirs: list[Path] = []
        if self._app_dir is not None:
            code_dirs = [self._app_dir / "python", self._app_dir / "python" / "lib"]
        try:
            for planned in self.executor.agents:
                loaded = load_agent(planned, self._context(planned), code_dirs=code_dirs)
                await loaded.init(self._agent_config(planned))
                await loaded.start()
                # As the worker: an agent is closed once it started.
                self._started.append((planned, loaded))
        except BaseException:
            # The start-up failure is what the test needs to see, not a close() failure.
            with contextlib.suppress(Exception):
                await self._close_all()
            raise
        agents = [loaded for _, loaded in self._started]
        components = [planned.component for planned in self.executor.agents]
        # As workers.main builds the chain: after a source, and ending with a sink, if any.
        start = 1 if components[0] in ("source", "service") else 0
        if components[-1] == "sink":
            self._sink = _RecordingSink(cast(LoadedSink, agents[-1]))
            agents = agents[:-1]
        self._chain = Chain([cast(LoadedProcessor, a) for a in agents[start:]], self._sink)
        self._loaded = self._started[0][1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._loaded = None
        await self._close_all()

    async def _close_all(self) -> None:
        """Close the started agents, last first; raise the first failure after closing all."""
        first: BaseException | None = None
        while self._started:
            _, loaded = self._started.pop()
            try:
                await loaded.close()
            except Exception as error:
                first = first or error
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None
        if first is not None:
            raise first

    def _context(self, planned: PlannedAgent) -> AgentContext:
        return AgentContext(
            agent_id=planned.id,
            tenant=self.tenant,
            application=self.application,
            globals=self.app.globals,
            state_directory=self._state_directory(planned),
            topic_producer=self._producer,
        )

    def _state_directory(self, planned: PlannedAgent) -> str | None:
        if planned.disk is None:
            return None
        root = self._state_root
        if root is None:
            if self._temporary is None:
                self._temporary = Path(tempfile.mkdtemp(prefix="sluice-testing-state-"))
            root = self._temporary
        path = root / planned.id
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _agent_config(self, planned: PlannedAgent) -> dict[str, Any]:
        """As the worker passes it, plus the test's replacements."""
        return self.app.runtime_configuration(
            {**planned.configuration, **self._overrides.get(planned.id, {})}
        )

    def _read_outputs(self, records: list[Record]) -> tuple[Record, ...]:
        """As :func:`workers.outputs.encode_outputs`: each at its ``destination``, else at the
        output topic; without an output topic only routed records are written."""
        written_to = self.executor.output_topic
        messages = [
            (topic, to_kafka(out, source=self.source))
            for out in records
            if (topic := out.destination or written_to) is not None
        ]
        return tuple(_read_back(message, topic) for topic, message in messages)


def _overrides(
    executor: Executor, config: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """``config`` checked: its keys are agent ids of ``executor``, its values mappings."""
    ids = [agent.id for agent in executor.agents]
    overrides: dict[str, dict[str, Any]] = {}
    for agent_id, entries in (config or {}).items():
        if agent_id not in ids:
            raise HarnessError(
                f"config names agent {agent_id!r}, which executor {executor.id} does not run "
                f"(its agents: {', '.join(ids)}); config maps agent ids to configuration entries"
            )
        if not isinstance(entries, Mapping):
            raise HarnessError(
                f"config[{agent_id!r}] is a {type(entries).__name__}: expected a mapping of "
                "configuration entries"
            )
        overrides[agent_id] = dict(entries)
    return overrides


def _user_object(loaded: LoadedAgent) -> object:
    """Your instance behind the worker's adapter, or the built-in agent itself."""
    return cast(object, getattr(loaded, "instance", loaded))
