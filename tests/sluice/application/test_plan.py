"""Planner golden tests: the whole plan of each case is compared with a reviewed YAML file.

Set SLUICE_UPDATE_GOLDEN=1 to rewrite the files after a deliberate change, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from sluice.application import Plan, load_application, plan_application
from tests.sluice.application.conftest import WriteApp

GOLDEN = Path(__file__).parent / "golden"
TOPICS = """
topics:
  - {name: in, creation-mode: create-if-not-exists, partitions: 2, schema: {type: json}}
  - {name: middle, creation-mode: create-if-not-exists}
  - {name: out, creation-mode: create-if-not-exists}
"""
P = "type: python-processor\n    configuration: {className: m.P}"

CASES: dict[str, str] = {
    # Three processors joined by implicit topics, equal resources/errors: one executor.
    "fused": TOPICS
    + f"""
pipeline:
  - {P}
    input: in
  - {P}
  - {P}
    output: out
""",
    # An explicit topic between two agents stops fusion.
    "explicit-topic": TOPICS
    + f"""
pipeline:
  - id: first
    {P}
    input: in
    output: middle
  - id: second
    {P}
    output: out
""",
    # Different parallelism: two executors joined by agent-<id>-input.
    "parallelism": TOPICS
    + f"""
pipeline:
  - id: a
    {P}
    input: in
  - id: b
    {P}
    resources: {{parallelism: 3}}
    output: out
""",
    # Different errors: no fusion; dead-letter topics follow each input.
    "errors": TOPICS
    + f"""
errors: {{on-failure: dead-letter, retries: 2}}
pipeline:
  - id: a
    {P}
    input: in
  - id: b
    {P}
    errors: {{on-failure: skip}}
    output: out
""",
    # composable: false keeps an agent on its own.
    "not-composable": TOPICS
    + """
pipeline:
  - {id: a, type: identity, input: in}
  - {id: b, type: python-processor, configuration: {className: m.P, composable: false}}
  - {id: c, type: identity, output: out}
""",
    # A service is never fused and reads no topic; a source + processor + sink fuse.
    "service-and-source": TOPICS
    + """
pipeline:
  - {type: python-source, configuration: {className: m.S}}
  - {type: identity}
  - {type: python-sink, configuration: {className: m.K}}
  - {id: svc, type: python-service, configuration: {className: m.V}}
""",
    # Disks are the union of the fused agents' disks, each with its own directory.
    "disks": TOPICS
    + f"""
module: chatbots
id: bot
resources: {{disk: {{enabled: true, size: 1G, type: fast}}}}
pipeline:
  - {P}
    input: in
    resources: {{disk: {{size: 64M}}}}
  - {P}
    resources: {{disk: {{enabled: false}}}}
  - {P}
    output: out
""",
}


def _plan(write_app: WriteApp, pipeline: str) -> Plan:
    return plan_application(load_application(write_app({"pipeline.yaml": pipeline})))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(write_app: WriteApp, case: str) -> None:
    rendered = yaml.safe_dump(_plan(write_app, CASES[case]).to_dict(), sort_keys=False)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("SLUICE_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


def test_fusion_happens(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["fused"])
    [executor] = plan.executors
    assert executor.id == "pipeline-python-processor-1"
    assert [a.id for a in executor.agents] == [
        "pipeline-python-processor-1",
        "pipeline-python-processor-2",
        "pipeline-python-processor-3",
    ]
    assert (executor.input_topic, executor.output_topic) == ("in", "out")
    assert not any(t.implicit for t in plan.topics)


def test_explicit_topic_prevents_fusion(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["explicit-topic"])
    assert [(e.id, e.input_topic, e.output_topic) for e in plan.executors] == [
        ("first", "in", "middle"),
        ("second", "middle", "out"),
    ]


def test_different_parallelism_gets_an_implicit_topic(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["parallelism"])
    assert [
        (e.id, e.input_topic, e.output_topic, e.resources.parallelism) for e in plan.executors
    ] == [("a", "in", "agent-b-input", 1), ("b", "agent-b-input", "out", 3)]
    implicit = plan.topic("agent-b-input")
    assert implicit is not None and implicit.creation_mode == "create-if-not-exists"


def test_topic_spec_of_a_declared_planned_and_undeclared_topic(write_app: WriteApp) -> None:
    """The plan and the application answer alike: declared as declared, else a bare spec."""
    app = load_application(write_app({"pipeline.yaml": CASES["parallelism"]}))
    plan = plan_application(app)
    assert plan.topic_spec("in") == app.topic_spec("in") == plan.topic("in")
    assert plan.topic_spec("agent-b-input") == plan.topic("agent-b-input")
    assert plan.topic_spec("made-elsewhere") == app.topic_spec("made-elsewhere")
    bare = plan.topic_spec("made-elsewhere")
    assert (bare.name, bare.schema, bare.creation_mode) == ("made-elsewhere", None, "none")


def test_different_errors_and_dead_letters(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["errors"])
    assert [(e.id, e.dead_letter_topic) for e in plan.executors] == [
        ("a", "in-deadletter"),
        ("b", None),
    ]
    dead = plan.topic("in-deadletter")
    assert dead is not None and dead.schema is not None and dead.schema.type == "json"


def test_not_composable(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["not-composable"])
    assert [[a.id for a in e.agents] for e in plan.executors] == [["a"], ["b"], ["c"]]
    assert [e.input_topic for e in plan.executors] == ["in", "agent-b-input", "agent-c-input"]


def test_service_is_never_fused(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["service-and-source"])
    assert [(e.id, e.component, len(e.agents)) for e in plan.executors] == [
        ("pipeline-python-source-1", "source", 3),
        ("svc", "service", 1),
    ]
    assert [a.id for a in plan.executors[0].agents] == [
        "pipeline-python-source-1",
        "pipeline-identity-2",
        "pipeline-python-sink-3",
    ]


def test_disks_union_with_module_prefixed_ids(write_app: WriteApp) -> None:
    plan = _plan(write_app, CASES["disks"])
    [executor] = plan.executors
    assert [(d.agent_id, d.size, d.type) for d in executor.disks] == [
        ("chatbots-bot-python-processor-1", 64 * 1024**2, "fast"),
        ("chatbots-bot-python-processor-3", 1024**3, "fast"),
    ]


def test_plan_is_deterministic(write_app: WriteApp) -> None:
    first = _plan(write_app, CASES["errors"]).to_dict()
    assert _plan(write_app, CASES["errors"]).to_dict() == first


CRAWLER = """
topics:
  - name: pages
pipeline:
  - name: crawl
    type: webcrawler-source
    output: pages
    configuration:
      seed-urls: ["https://example.com/"]
      allowed-domains: ["https://example.com"]
      state-storage: {storage}
"""


@pytest.mark.parametrize(
    ("storage", "resources", "expected"),
    [
        ("disk", "", [256 * 1024**2]),  # LangStream's planner gives the crawler 256M
        ("disk", "    resources:\n      disk: {enabled: false, size: 1G}\n", [1024**3]),
        ("s3", "", []),
    ],
)
def test_a_crawler_keeping_its_state_on_disk_gets_a_disk(
    write_app: WriteApp, storage: str, resources: str, expected: list[int]
) -> None:
    pipeline = CRAWLER.replace("{storage}", storage) + resources
    [executor] = _plan(write_app, pipeline).executors
    assert [d.size for d in executor.disks] == expected
