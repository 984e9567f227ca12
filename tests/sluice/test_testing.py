"""``sluice.testing``: users' agents run in memory through the worker's chain and error policy.

Everything here runs without Kafka except the last test, which runs the same agent under a real
worker on the real broker and checks that the harness reports what the worker wrote.
"""

from __future__ import annotations

import asyncio
import doctest
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import langstream
import sluice.testing
import sluice.testing.harness
import sluice.testing.results
from langstream import SimpleRecord
from sluice import (
    AgentContext,
    FatalError,
    Processor,
    Record,
    Retry,
    Service,
    Sink,
    SkipRecord,
    Source,
)
from sluice.kafka import KafkaSettings, Producer
from sluice.testing import (
    AgentHarness,
    ExecutorFailed,
    HarnessError,
    run_processor,
    run_sink,
    run_source,
)

# With the worker's fixtures (app_factory, start_worker, topics), for the comparison with a real
# worker: pytest finds fixtures among a module's names, and the test's parameters name them again.
from tests.workers.conftest import (  # noqa: F401
    StartWorker,
    app_factory,
    prepare,
    read_all,
    send,
    start_worker,
    topics,
)

# -- agents ------------------------------------------------------------------------------------


class Greet(Processor):
    """Sluice shape: configuration, a header of its own, the input's headers carried."""

    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.greeting = config["greeting"]
        self.globals = config["globals"]

    def process(self, record: Record) -> Record:
        return record.with_value(f"{self.greeting}, {record.value}").with_headers(by="greet")


class LangStreamUpper(langstream.Processor):
    """LangStream shape: a SimpleRecord in, a SimpleRecord with list headers out."""

    def process(self, record: langstream.Record) -> list[Any]:
        return [SimpleRecord(str(record.value()).upper(), headers=[("shape", "langstream")])]


class Plain:
    """No base class at all: tuples, dicts and a future."""

    def process(self, record: Any) -> Future[list[Any]]:
        done: Future[list[Any]] = Future()
        done.set_result([(record.value(), "k1"), {"value": [1, 2], "headers": {"n": 2}}])
        return done


class Flaky(Processor):
    """Fails the first ``fails`` attempts of every record."""

    def __init__(self, fails: int, error: Exception | None = None) -> None:
        self.fails = fails
        self.error = error or ValueError("not now")
        self.calls: dict[Any, int] = {}

    def process(self, record: Record) -> Record:
        self.calls[record.value] = self.calls.get(record.value, 0) + 1
        if self.calls[record.value] <= self.fails:
            raise self.error
        return record


class Picky(Processor):
    def process(self, record: Record) -> Record:
        if record.value == "skip":
            raise SkipRecord("not for me")
        if record.value == "fatal":
            raise FatalError("the model is gone")
        if record.value == "bad":
            raise ValueError(f"bad input {record.value}")
        return record.with_value(record.value.upper())


class AsyncHooks:
    """LangStream shape with every hook ``async def``."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def init(self, config: dict[str, Any]) -> None:
        self.events.append(f"init {config['x']}")

    async def start(self) -> None:
        self.events.append("start")

    async def process(self, record: Any) -> list[Any]:
        await asyncio.sleep(0)
        return [SimpleRecord(record.value() * 2)]

    async def close(self) -> None:
        self.events.append("close")


class Announce(Processor):
    """Writes to another topic from async and from sync code."""

    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.producer = context.get_topic_producer()

    async def process(self, record: Record) -> Record:  # type: ignore[override]
        await self.producer.awrite("news", Record(f"async {record.value}"))
        await asyncio.to_thread(self._sync, record)
        return record

    def _sync(self, record: Record) -> None:
        self.producer.write("news", Record(f"sync {record.value}")).result()


# -- processors ----------------------------------------------------------------------------------


def test_the_docstring_examples_run() -> None:
    for module in (sluice.testing, sluice.testing.harness, sluice.testing.results):
        failed, attempted = doctest.testmod(module)
        assert failed == 0, module.__name__
        assert attempted > 0 or module is sluice.testing.results


def test_a_sluice_processor_gets_its_config_and_carries_headers() -> None:
    results = run_processor(
        Greet(),
        ["Ann", {"value": "Bo", "key": "k", "headers": {"session-id": "s1", "by": "client"}}],
        config={"greeting": "Hi"},
        globals={"region": "eu"},
    )
    assert results.values == ["Hi, Ann", "Hi, Bo"]
    second = results.outputs[1]
    # The input's session id is carried; the agent's own header wins over the input's.
    assert dict(second.headers) == {"session-id": "s1", "by": "greet"}
    assert second.key == "k"
    assert second.origin == "output"
    assert [d.outcome for d in results] == ["done", "done"]
    assert results.deliveries[1].input.origin == "input"


def test_globals_reach_the_configuration_as_in_the_worker() -> None:
    async def check() -> None:
        async with AgentHarness(Greet(), config={"greeting": "Hi"}, globals={"a": 1}) as h:
            assert isinstance(h.instance, Greet)
            assert h.instance.globals == {"a": 1}

    asyncio.run(check())


def test_langstream_processors_return_simple_records_tuples_dicts_and_futures() -> None:
    results = run_processor(LangStreamUpper(), [{"value": "hi", "headers": {"session-id": "s"}}])
    assert results.values == ["HI"]
    assert dict(results.outputs[0].headers) == {"session-id": "s", "shape": "langstream"}

    results = run_processor(Plain(), [{"value": "v", "headers": {"h": "x"}}])
    first, second = results.outputs
    assert (first.value, first.key, dict(first.headers)) == ("v", "k1", {"h": "x"})
    # A non-string header value becomes JSON text, as in the worker.
    assert (second.value, dict(second.headers)) == ([1, 2], {"h": "x", "n": "2"})


def test_outputs_read_as_a_consumer_of_the_topic_reads_them() -> None:
    class Shapes(Processor):
        def process(self, record: Record) -> list[Record]:
            return [Record(("a", 1)), Record(b"\x00raw"), Record({"n": 1.5}), Record(None)]

    values = run_processor(Shapes(), ["x"]).values
    assert values == [["a", 1], b"\x00raw", {"n": 1.5}, None]


async def test_async_hooks_run_and_close_is_called() -> None:
    agent = AsyncHooks()
    async with AgentHarness(agent, config={"x": 7}) as harness:
        assert harness.component == "processor"
        results = await harness.send("ab")
        assert agent.events == ["init 7", "start"]
    assert results.values == ["abab"]
    assert agent.events == ["init 7", "start", "close"]


def test_topic_producer_writes_are_reported() -> None:
    results = run_processor(Announce(), [{"value": "v", "headers": {"session-id": "s"}}])
    assert [(t, r.value) for t, r in results.topic_writes] == [
        ("news", "async v"),
        ("news", "sync v"),
    ]
    assert results.values == ["v"]


def test_the_state_directory_is_given_to_both_shapes(tmp_path: Path) -> None:
    class Remember(Processor):
        def init(self, config: dict[str, Any], context: AgentContext) -> None:
            self.state = context.get_persistent_state_directory()

        def process(self, record: Record) -> Record:
            assert self.state is not None
            path = Path(self.state) / "seen"
            seen = int(path.read_text()) + 1 if path.exists() else 1
            path.write_text(str(seen))
            return record.with_value(seen)

    class LangStreamRemember:
        def init(self, config: dict[str, Any], context: Any) -> None:
            self.state = context.get_persistent_state_directory()

        def process(self, record: Any) -> list[Any]:
            return [(self.state,)]

    state = tmp_path / "state" / "agent"
    assert run_processor(Remember(), ["a", "b"], state_dir=state).values == [1, 2]
    # A second run (a restart) finds what the first left.
    assert run_processor(Remember(), ["c"], state_dir=state).values == [3]
    assert run_processor(LangStreamRemember(), ["x"], state_dir=state).values == [str(state)]
    assert run_processor(LangStreamRemember(), ["x"]).values == [None]


# -- the error policy -----------------------------------------------------------------------------


def test_retries_then_dead_letter_with_error_headers() -> None:
    errors = {"retries": 2, "on-failure": "dead-letter"}
    started = time.monotonic()
    results = run_processor(
        Flaky(fails=5), [{"value": "v", "key": "k", "headers": {"session-id": "s1"}}], errors=errors
    )
    assert time.monotonic() - started < 2  # the backoff is reported, not waited
    (delivery,) = results
    assert delivery.outcome == "dead-lettered"
    assert delivery.attempts == 3
    assert delivery.delays == (0.2, 0.4)
    assert isinstance(delivery.error, ValueError)
    letter = results.dead_letters[0]
    assert (letter.value, letter.key, letter.origin) == ("v", "k", "input-deadletter")
    assert dict(letter.headers) == {
        "session-id": "s1",
        "error-class": "builtins.ValueError",
        "error-message": "not now",
        "origin-topic": "input",
        "origin-partition": "0",
        "origin-offset": "0",
    }
    assert results.outputs == []


def test_a_retry_that_succeeds_and_retry_after() -> None:
    results = run_processor(Flaky(fails=1), ["a", "b"], errors={"retries": 1})
    assert results.values == ["a", "b"]
    assert [(d.outcome, d.attempts) for d in results] == [("done", 2), ("done", 2)]

    started = time.monotonic()
    results = run_processor(
        Flaky(fails=1, error=Retry("rate limited", after=30)), ["a"], errors={"retries": 1}
    )
    assert results.deliveries[0].delays == (30,)
    assert time.monotonic() - started < 5


def test_skip_record_and_on_failure_skip() -> None:
    results = run_processor(Picky(), ["a", "skip", "bad", "b"], errors={"on-failure": "skip"})
    assert results.values == ["A", "B"]
    assert [r.value for r in results.skipped] == ["skip", "bad"]
    skipped, failed = results.deliveries[1:3]
    assert (skipped.outcome, skipped.error, skipped.attempts) == ("skipped", None, 1)
    assert failed.outcome == "skipped"
    assert str(failed.error) == "bad input bad"
    assert results.dead_letters == []


async def test_on_failure_fail_stops_and_keeps_what_came_before() -> None:
    async with AgentHarness(Picky()) as harness:
        with pytest.raises(ExecutorFailed, match=r"errors.on-failure is fail") as raised:
            await harness.send("a", "bad", "b")
        assert isinstance(raised.value.__cause__, ValueError)
        assert harness.history.values == ["A"]
        # FatalError stops the executor whatever on-failure says.
    async with AgentHarness(Picky(), errors={"on-failure": "skip", "retries": 3}) as harness:
        with pytest.raises(ExecutorFailed, match="FatalError: the model is gone"):
            await harness.send("fatal")


def test_an_output_that_cannot_be_encoded_is_a_failure_of_its_input() -> None:
    class Unencodable(Processor):
        def process(self, record: Record) -> Record:
            return record.with_value({"not json": object()})

    results = run_processor(Unencodable(), ["x"], errors={"on-failure": "dead-letter"})
    assert results.dead_letters[0].headers["error-class"] == "sluice.events.UnencodableRecord"


# -- sinks and sources ------------------------------------------------------------------------------


def test_a_sink_shows_what_it_wrote_and_retries() -> None:
    class Store(Sink):
        def __init__(self) -> None:
            self.failed = False

        async def write(self, record: Record) -> None:  # type: ignore[override]
            if record.value == "flaky" and not self.failed:
                self.failed = True
                raise ConnectionError("database away")

    results = run_sink(
        Store(), ["a", {"value": "flaky", "headers": {"h": "1"}}], errors={"retries": 1}
    )
    assert [(r.value, dict(r.headers)) for r in results.written] == [
        ("a", {}),
        ("flaky", {"h": "1"}),
    ]
    assert [d.attempts for d in results] == [1, 2]
    assert results.outputs == []


def test_a_sluice_source_is_read_and_committed() -> None:
    class Numbers(Source):
        def init(self, config: dict[str, Any], context: AgentContext) -> None:
            self.pending = list(range(config["n"]))
            self.committed: list[Any] = []
            self.failed: list[tuple[Any, str]] = []

        def read(self) -> list[Record]:
            batch, self.pending = self.pending[:2], self.pending[2:]
            return [Record(v if v != 3 else object(), headers={"n": str(v)}) for v in batch]

        def commit(self, records: list[Record]) -> None:
            self.committed.extend(r.value for r in records)

        def permanent_failure(self, record: Record, error: Exception) -> None:
            self.failed.append((record.headers["n"], type(error).__name__))

    source = Numbers()
    results = run_source(source, config={"n": 5}, errors={"on-failure": "skip"})
    assert results.values == [0, 1, 2, 4]
    assert dict(results.outputs[0].headers) == {"n": "0"}
    assert [r.value for r in results.committed] == [0, 1, 2, 4]
    assert source.committed == [0, 1, 2, 4]
    assert source.failed == [("3", "UnencodableRecord")]
    assert [d.outcome for d in results][3] == "permanent-failure"


async def test_a_langstream_source_commits_the_records_it_returned() -> None:
    class Lines:
        def __init__(self) -> None:
            self.lines = ["a", "b", "c"]
            self.committed: list[Any] = []

        def read(self) -> list[Any]:
            return [{"value": self.lines.pop(0)}] if self.lines else []

        def commit(self, record: Any) -> None:
            self.committed.append(record)

    source = Lines()
    async with AgentHarness(source) as harness:
        first = await harness.read(2)
        rest = await harness.read()
    assert first.values == ["a", "b"]
    assert rest.values == ["c"]
    assert all(isinstance(r, SimpleRecord) for r in source.committed)
    assert [r.value() for r in source.committed] == ["a", "b", "c"]
    assert harness.history.values == ["a", "b", "c"]


async def test_a_source_that_gives_too_few_records_is_reported() -> None:
    class Empty(Source):
        pass

    async with AgentHarness(Empty()) as harness:
        with pytest.raises(HarnessError, match=r"0 record\(s\) in 5 read\(\) calls, not 1"):
            await harness.read(1, max_reads=5)


# -- services --------------------------------------------------------------------------------------


async def test_a_service_app_is_called_in_memory() -> None:
    class Hello(Service):
        def init(self, config: dict[str, Any], context: AgentContext) -> None:
            self.name = config["name"]

        def app(self) -> Any:
            async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
                assert scope["type"] == "http"
                body = f"hello {self.name} {scope['path']}".encode()
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": body})

            return asgi

    async with AgentHarness(Hello(), config={"name": "ann"}) as harness, harness.client() as http:
        reply = await http.get("/x")
    assert (reply.status_code, reply.text) == (200, "hello ann /x")


async def test_a_main_style_service_says_it_cannot_be_called() -> None:
    class Own:
        def main(self) -> None:
            raise AssertionError("not run")

    async with AgentHarness(Own()) as harness:
        with pytest.raises(HarnessError, match="main\\(\\)-style service"):
            harness.client()


# -- loading and misuse ---------------------------------------------------------------------------


def test_a_class_name_is_loaded_from_the_application_folder(tmp_path: Path) -> None:
    (tmp_path / "python" / "lib").mkdir(parents=True)
    (tmp_path / "python" / "lib" / "helper_for_harness.py").write_text("SUFFIX = '!'\n")
    (tmp_path / "python" / "harness_app.py").write_text(
        textwrap.dedent(
            """
            from helper_for_harness import SUFFIX
            from langstream import Processor, SimpleRecord

            class Shout(Processor):
                def process(self, record):
                    return [SimpleRecord(record.value() + SUFFIX)]
            """
        )
    )
    results = run_processor("harness_app.Shout", ["hey"], app_dir=tmp_path)
    assert results.values == ["hey!"]
    with pytest.raises(Exception, match="module no_such_module not found"):
        run_processor("no_such_module.X", ["hey"], app_dir=tmp_path)


async def test_misuse_is_named() -> None:
    with pytest.raises(HarnessError, match=r"unknown key.*retry"):
        AgentHarness(Picky(), errors={"retry": 1})
    with pytest.raises(HarnessError, match="on-failure is 'drop'"):
        AgentHarness(Picky(), errors={"on-failure": "drop"})
    with pytest.raises(HarnessError, match="use `async with AgentHarness"):
        run_processor(Picky(), ["a"])  # inside a running loop
    with pytest.raises(HarnessError, match=r"pass an instance \(Picky\(\)\)"):
        async with AgentHarness(Picky):
            pass
    with pytest.raises(HarnessError, match="invalid className 'Picky'"):
        async with AgentHarness("Picky"):
            pass
    async with AgentHarness(Picky()) as harness:
        with pytest.raises(HarnessError, match=r"read\(\) is for a source; this agent is a proc"):
            await harness.read()
    with pytest.raises(HarnessError, match="has none of process"):
        async with AgentHarness(object()):
            pass


def test_the_sdk_does_not_import_the_harness() -> None:
    code = "import sys, sluice; print('sluice.testing' in sys.modules, 'workers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- the same as the worker -----------------------------------------------------------------------

WORKER_APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: picky
    type: python-processor
    input: {inp}
    output: {out}
    errors: {{retries: 1, on-failure: dead-letter}}
    configuration: {{className: harness_picky.Picky, suffix: "!"}}
"""
WORKER_AGENT = """
from sluice import Processor, Record, SkipRecord


class Picky(Processor):
    def init(self, config, context):
        self.suffix = config["suffix"]

    def process(self, record):
        if record.value == "skip":
            raise SkipRecord("not for me")
        if record.value == "bad":
            raise ValueError("bad input")
        return [record.with_value(record.value + self.suffix).with_headers(by="picky"),
                Record({{"len": len(record.value)}})]
"""


@pytest.mark.kafka
async def test_the_harness_reports_what_the_worker_writes(
    app_factory: Callable[..., Path],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
    start_worker: StartWorker,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    app_dir = app_factory(
        {"pipeline.yaml": WORKER_APP, "python/harness_picky.py": WORKER_AGENT}, **topics
    )
    inputs = [
        Record("a", key="k1", headers={"session-id": "s1"}),
        Record("skip"),
        Record("bad", headers={"session-id": "s2", "by": "client"}),
        Record("b", headers={"by": "client"}),
    ]
    await prepare(app_dir, kafka_bootstrap)
    async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
        for record in inputs:  # one at a time: offsets in input order
            await send(producer, topics["inp"], record)
    worker = await start_worker(app_dir, "picky")
    outputs = await read_all(kafka_bootstrap, topics["out"], 4, within=60, settle=1)
    dead = await read_all(kafka_bootstrap, f"{topics['inp']}-deadletter", 1, within=30)
    assert await worker.stop() == 0

    async with AgentHarness(
        "harness_picky.Picky",
        app_dir=app_dir,
        config={"suffix": "!"},
        errors={"retries": 1, "on-failure": "dead-letter"},
        input_topic=topics["inp"],
        output_topic=topics["out"],
    ) as harness:
        results = await harness.send(*inputs)

    def seen(record: Record) -> tuple[Any, Any, dict[str, str], str | None]:
        return record.value, record.key, dict(record.headers), record.origin

    assert [seen(o.record) for o in outputs] == [seen(r) for r in results.outputs]
    assert [seen(d.record) for d in dead] == [seen(r) for r in results.dead_letters]
    assert [d.outcome for d in results] == ["done", "skipped", "dead-lettered", "done"]
    assert results.deliveries[2].attempts == 2


def test_from_application_runs_the_agent_as_pipeline_yaml_declares_it(tmp_path: Path) -> None:
    app_dir = tmp_path / "apps" / "pipe"
    (app_dir / "python").mkdir(parents=True)
    # The texts are format strings for app_factory: formatting them gives the files.
    agent = WORKER_AGENT.format().replace("harness_picky", "harness_pipe")
    (app_dir / "python" / "harness_pipe.py").write_text(agent)
    pipeline = WORKER_APP.format(inp="questions", out="answers")
    (app_dir / "pipeline.yaml").write_text(pipeline.replace("harness_picky", "harness_pipe"))
    harness = AgentHarness.from_application(app_dir, "picky")
    results = run_processor(harness, ["a", "bad"])
    assert results.values == ["a!", {"len": 1}]
    (letter,) = results.dead_letters
    assert letter.headers["origin-topic"] == "questions"
    assert letter.origin == "questions-deadletter"
    assert results.deliveries[1].attempts == 2  # retries: 1, from pipeline.yaml
    assert results.outputs[0].origin == "answers"

    override = AgentHarness.from_application(app_dir, "picky", config={"suffix": "?"})
    assert run_processor(override, ["b"]).values == ["b?", {"len": 1}]
    with pytest.raises(HarnessError, match=r"no agent 'nope' in .* \(agents: picky\)"):
        AgentHarness.from_application(app_dir, "nope")
    with pytest.raises(HarnessError, match="give the options to the harness"):
        run_processor(override, ["b"], errors={"retries": 1})


def test_the_public_names_are_pinned() -> None:
    assert sluice.testing.__all__ == [
        "AgentHarness",
        "Component",
        "Delivery",
        "ExecutorFailed",
        "ExecutorHarness",
        "HarnessError",
        "MemoryTopicProducer",
        "Outcome",
        "Results",
        "as_record",
        "errors_spec",
        "infer_component",
        "run_processor",
        "run_sink",
        "run_source",
    ]
    assert all(hasattr(sluice.testing, name) for name in sluice.testing.__all__)
