"""``sluice.testing`` on a whole planned executor: built-in agents and a user's processor fused
into one chain, run in memory as the worker runs them.

Everything here runs without Kafka except the last test, which runs the same executor under a
real worker on the real broker and checks that the harness reports what the worker wrote.
"""

from __future__ import annotations

import doctest
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sluice.testing.executor
from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings, Producer
from sluice.record import Record
from sluice.testing import AgentHarness, ExecutorFailed, HarnessError, run_processor, run_sink
from sluice.testing.executor import ExecutorHarness

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
from workers.errors import AgentLoadError

# compute -> drop -> dispatch -> a Python processor -> document-to-json, fused into executor
# "score". A record whose value.n is no number fails in compute; n == 13 fails in the Python
# processor; n == 0 is dropped; a "priority: high" header routes the record to {urgent}.
PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {urgent}, creation-mode: create-if-not-exists}}
  - {{name: {audit}, creation-mode: create-if-not-exists}}
errors: {{retries: 1, on-failure: dead-letter}}
pipeline:
  - id: score
    type: compute
    input: {inp}
    configuration:
      fields:
        - {{name: value.next, expression: "value.n + 1", type: INT64}}
        - {{name: properties.scored, expression: "'yes'"}}
  - id: quiet
    type: drop
    configuration: {{when: "value.n == 0"}}
  - id: route
    type: dispatch
    configuration:
      routes:
        - {{when: "properties.priority == 'high'", destination: {urgent}}}
  - id: label
    type: python-processor
    configuration: {{className: labels.Label, prefix: "n=", audit: {audit}}}
  - id: wrap
    type: document-to-json
    output: {out}
"""

LABEL = """
from sluice import Processor, Record


class Label(Processor):
    def init(self, config, context):
        self.prefix = config["prefix"]
        self.audit = config["audit"]
        self.producer = context.get_topic_producer()

    async def process(self, record):
        if record.value["n"] == 13:
            raise ValueError("unlucky")
        await self.producer.awrite(self.audit, Record(record.value["n"]))
        return record.with_value(f"{self.prefix}{record.value['next']}").with_headers(by="label")
"""

NAMES = {"inp": "questions", "out": "answers", "urgent": "urgent", "audit": "audit"}


def write_app(root: Path, files: dict[str, str], **names: str) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # The pipelines are format strings (topic names); the Python files are taken as they are.
        is_yaml = relative.endswith(".yaml")
        path.write_text(text.format(**{**NAMES, **names}) if is_yaml else textwrap.dedent(text))
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"pipeline.yaml": PIPELINE, "python/labels.py": LABEL})


INPUTS: list[dict[str, Any]] = [
    {"value": {"n": 1}, "key": "k1", "headers": {"session-id": "s1"}},
    {"value": {"n": 0}, "headers": {"session-id": "s2"}},
    {"value": {"n": 5}, "headers": {"priority": "high"}},
    {"value": {"n": "oops"}, "headers": {"session-id": "s4"}},
    {"value": {"n": 13}},
]


def test_the_planner_fuses_the_pipeline_into_one_executor(app: Path) -> None:
    # The premise of the tests below: one executor, as the worker would run it.
    (executor,) = plan_application(load_application(app)).executors
    assert [a.id for a in executor.agents] == ["score", "quiet", "route", "label", "wrap"]


def test_the_fused_executor_runs_in_memory(app: Path) -> None:
    results = run_processor(ExecutorHarness.from_application(app, "score"), INPUTS)
    first, dropped, routed, bad, failed_late = results.deliveries
    assert [d.outcome for d in results] == [
        "done",
        "done",
        "done",
        "dead-lettered",
        "dead-lettered",
    ]

    # Through every agent: compute, the Python processor, document-to-json (copying headers).
    (out,) = first.outputs
    document = {"text": "n=2", "session-id": "s1", "scored": "yes", "by": "label"}
    assert json.loads(out.value) == document
    assert out.key == "k1"
    assert out.origin == "answers"
    assert dict(out.headers) == {"session-id": "s1", "scored": "yes", "by": "label"}

    # Dropped by drop: done, nothing written.
    assert dropped.outputs == ()

    # Routed by dispatch: it left the chain at once (no label, no JSON document) for its topic.
    (urgent,) = routed.outputs
    assert urgent.origin == "urgent"
    assert urgent.value == {"n": 5, "next": 6}
    assert dict(urgent.headers) == {"priority": "high", "scored": "yes"}

    # A failure in compute and one in the Python processor: the executor's policy (retries: 1,
    # then dead-letter) applies to the input record, whichever agent failed.
    assert bad.attempts == failed_late.attempts == 2
    assert bad.outputs == failed_late.outputs == ()
    letter = bad.dead_letter
    assert letter is not None
    assert letter.value == {"n": "oops"}
    assert letter.origin == "questions-deadletter"
    assert letter.headers["origin-topic"] == "questions"
    assert letter.headers["session-id"] == "s4"
    assert failed_late.dead_letter is not None
    # The input record's n (see test_a_dead_letter_holds_the_input_as_it_was_read for the rest).
    assert failed_late.dead_letter.value["n"] == 13
    assert failed_late.dead_letter.headers["error-class"] == "builtins.ValueError"
    assert failed_late.dead_letter.headers["error-message"] == "unlucky"

    # The Python processor's topic producer writes, shared by the executor's agents.
    assert [(topic, r.value) for topic, r in results.topic_writes] == [("audit", 1)]
    assert [r.origin for r in results.outputs] == ["answers", "urgent"]


async def test_any_agent_of_the_executor_names_it_and_instances_are_reachable(app: Path) -> None:
    async with ExecutorHarness.from_application(app, "label") as harness:
        assert isinstance(harness, ExecutorHarness)
        assert harness.executor.id == "score"
        assert list(harness.instances) == ["score", "quiet", "route", "label", "wrap"]
        assert type(harness.instances["label"]).__name__ == "Label"  # the user's object
        assert type(harness.instances["score"]).__name__ == "Compute"
        with pytest.raises(HarnessError, match=r"runs 5 agents .*use instances\[agent_id\]"):
            _ = harness.instance
        results = await harness.send({"value": {"n": 2}})
    assert json.loads(results.values[0]) == {"text": "n=3", "scored": "yes", "by": "label"}
    assert harness.history.values == results.values


def test_config_replaces_entries_per_agent_and_errors_can_be_changed(app: Path) -> None:
    harness = ExecutorHarness.from_application(
        app, "score", config={"label": {"prefix": "#"}}, errors={"on-failure": "skip"}
    )
    results = run_processor(harness, [{"n": 1}, {"n": 13}])
    assert [json.loads(v)["text"] for v in results.values] == ["#2"]
    assert [d.outcome for d in results] == ["done", "skipped"]
    assert results.deliveries[1].attempts == 1

    with pytest.raises(HarnessError, match=r"config names agent 'nope'.*its agents: score, "):
        ExecutorHarness.from_application(app, "score", config={"nope": {}})
    with pytest.raises(HarnessError, match=r"config\['label'\] is a str"):
        ExecutorHarness.from_application(app, "score", config={"label": "x"})
    with pytest.raises(HarnessError, match=r"no executor or agent 'x' in .*score \(score, quiet"):
        ExecutorHarness.from_application(app, "x")


def test_on_failure_fail_stops_the_executor(app: Path) -> None:
    harness = ExecutorHarness.from_application(app, "score", errors={"retries": 0})
    with pytest.raises(ExecutorFailed, match="unlucky"):
        run_processor(harness, [{"n": 1}, {"n": 13}, {"n": 2}])
    assert len(harness.history) == 1  # what came before the failure


# A step writes into a copy of a dict value: a failure later in the chain dead-letters (and
# retries) the record as it was read, not as compute left it.
def test_a_dead_letter_holds_the_input_as_it_was_read(app: Path) -> None:
    results = run_processor(ExecutorHarness.from_application(app, "score"), [{"n": 13}])
    assert [letter.value for letter in results.dead_letters] == [{"n": 13}]
    assert [d.input.value for d in results] == [{"n": 13}]


SINK_APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {urgent}, creation-mode: create-if-not-exists}}
pipeline:
  - id: stamp
    type: compute
    input: {inp}
    configuration:
      fields:
        - {{name: properties.stamped, expression: "'1'"}}
  - id: hurry
    type: compute
    configuration:
      when: "value == 'now'"
      fields: [{{name: destinationTopic, expression: "'{urgent}'"}}]
  - id: keep
    type: python-sink
    resources: {{disk: {{enabled: true, size: 64M}}}}
    configuration: {{className: keeper.Keep}}
"""

KEEPER = """
from pathlib import Path


class Keep:  # LangStream style: no base class
    def init(self, config, context):
        self.folder = Path(context.get_persistent_state_directory())

    def write(self, record):
        (self.folder / "seen").write_text(record.value())
"""


def test_a_sink_executor_reports_what_the_sink_wrote(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"pipeline.yaml": SINK_APP, "python/keeper.py": KEEPER})
    state = tmp_path / "state"
    harness = ExecutorHarness.from_application(app, "keep", state_dir=state)
    assert harness.component == "sink"
    results = run_sink(harness, ["later", "now"])
    (written,) = results.written
    assert (written.value, dict(written.headers)) == ("later", {"stamped": "1"})
    assert results.outputs[0].origin == "urgent"  # routed by compute: it never reaches the sink
    assert results.outputs[0].value == "now"
    assert (state / "keep" / "seen").read_text() == "later"  # the agent's own folder


SOURCE_APP = """
topics:
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: count
    type: python-source
    configuration: {{className: counter.Count, records: 3}}
  - id: double
    type: compute
    output: {out}
    configuration:
      fields: [{{name: value, expression: "value * 2", type: INT32}}]
"""

COUNTER = """
from sluice import Record, Source


class Count(Source):
    def init(self, config, context):
        self.left = config["records"]

    def read(self):
        self.left -= 1
        return [Record(self.left)] if self.left >= 0 else []
"""


async def test_a_source_executor_is_read_through_its_processors(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"pipeline.yaml": SOURCE_APP, "python/counter.py": COUNTER})
    async with ExecutorHarness.from_application(app, "count") as harness:
        results = await harness.read()
    assert results.values == [4, 2, 0]
    assert [r.value for r in results.committed] == [2, 1, 0]
    assert {r.origin for r in results.outputs} == {"answers"}


def test_an_agent_that_cannot_load_is_named(tmp_path: Path) -> None:
    # No python/ folder: the module cannot be found (a name no other test imported).
    pipeline = PIPELINE.replace("labels.Label", "absent_labels.Label")
    app = write_app(tmp_path / "app", {"pipeline.yaml": pipeline})
    with pytest.raises(AgentLoadError, match=r"agent label.*absent_labels"):
        run_processor(ExecutorHarness.from_application(app, "score"), [{"n": 1}])


async def test_built_in_agents_get_their_context_and_component() -> None:
    # langserve-invoke writes streamed chunks with its context's topic producer.
    config = {"url": "http://127.0.0.1:9/invoke", "output-field": "value.answer"}
    async with AgentHarness("langserve-invoke", config=config) as harness:
        assert harness.component == "processor"
        assert getattr(harness.instance, "producer", None) is not None
    async with AgentHarness("timer-source", config={"period-seconds": 60}) as harness:
        assert harness.component == "source"


def test_the_docstring_examples_run() -> None:
    failed, attempted = doctest.testmod(sluice.testing.executor)
    assert failed == 0
    assert attempted > 0


# -- the same as the worker -----------------------------------------------------------------------


@pytest.mark.kafka
async def test_the_harness_reports_what_the_worker_writes(
    app_factory: Callable[..., Path],  # noqa: F811
    topics: dict[str, str],  # noqa: F811
    start_worker: StartWorker,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    names = {
        **topics,
        "urgent": f"urgent-{topics['out']}",
        "audit": f"audit-{topics['out']}",
    }
    files = {"pipeline.yaml": PIPELINE.format(**names), "python/labels.py": LABEL}
    # app_factory formats the texts again: their braces are literal here.
    app_dir = app_factory({k: v.replace("{", "{{").replace("}", "}}") for k, v in files.items()})
    inputs = [
        Record(item["value"], key=item.get("key"), headers=item.get("headers", {}))
        for item in INPUTS
    ]
    await prepare(app_dir, kafka_bootstrap)
    async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
        for record in inputs:  # one at a time: offsets in input order
            await send(producer, topics["inp"], record)
    worker = await start_worker(app_dir, "score")
    outputs = await read_all(kafka_bootstrap, topics["out"], 1, within=60, settle=1)
    urgent = await read_all(kafka_bootstrap, names["urgent"], 1, within=30)
    audit = await read_all(kafka_bootstrap, names["audit"], 1, within=30)
    dead = await read_all(kafka_bootstrap, f"{topics['inp']}-deadletter", 2, within=30)
    assert await worker.stop() == 0

    async with ExecutorHarness.from_application(app_dir, "score") as harness:
        results = await harness.send(*inputs)

    def seen(record: Record) -> tuple[Any, Any, dict[str, str], str | None]:
        return record.value, record.key, dict(record.headers), record.origin

    assert [seen(o.record) for o in outputs + urgent] == [seen(r) for r in results.outputs]
    assert [seen(o.record) for o in audit] == [seen(r) for _, r in results.topic_writes]
    assert [seen(d.record) for d in dead] == [seen(r) for r in results.dead_letters]
