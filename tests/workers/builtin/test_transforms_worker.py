"""Each transform agent in a real worker process on the real broker: outputs, keys, headers,
and a bad record under the agent's ``errors`` policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: {agent_type}
    input: {inp}
    output: {out}
    errors: {errors}
    configuration: {configuration}
"""

PERSON = '{"name": "Jane", "age": 42, "addr": {"city": "Rome"}}'
PERSON_KEY = '{"id": 7, "name": "keyname"}'


RunAgent = Callable[..., Awaitable[list[Record]]]


@pytest.fixture
def run_agent(
    start_app: StartApp, topics: dict[str, str], producer: Producer, kafka_bootstrap: str
) -> RunAgent:
    """Run ``agent_type`` alone in a worker, send ``records``, return ``expected`` outputs."""

    async def run(
        *,
        agent_type: str,
        configuration: str,
        errors: str,
        records: list[Record],
        expected: int,
    ) -> list[Record]:
        text = PIPELINE.format(
            agent_type=agent_type, errors=errors, configuration=configuration, **topics
        )
        worker = await start_app({"pipeline.yaml": text})
        for record in records:  # one at a time: the outputs keep the order
            await send(producer, topics["inp"], record)
        got = await read_all(kafka_bootstrap, topics["out"], expected, settle=0.5)
        assert await worker.stop() == 0
        return [r.record for r in got]

    return run


async def test_drop_fields_in_a_worker(run_agent: RunAgent) -> None:
    out = await run_agent(
        agent_type="drop-fields",
        configuration="{fields: [name, missing]}",
        errors="{on-failure: fail}",
        # Plain text is no JSON object: it goes on untouched, nothing fails.
        records=[Record(PERSON, key=PERSON_KEY, headers={"s": "1"}), Record("plain", key="k")],
        expected=2,
    )
    assert [(r.value, r.key) for r in out] == [
        ('{"age":42,"addr":{"city":"Rome"}}', '{"id":7}'),
        ("plain", "k"),
    ]
    assert out[0].headers["s"] == "1"


async def test_merge_key_value_in_a_worker(run_agent: RunAgent) -> None:
    out = await run_agent(
        agent_type="merge-key-value",
        configuration="{}",
        errors="{on-failure: fail}",
        records=[Record(PERSON, key=PERSON_KEY, headers={"s": "1"}), Record("[1, 2]", key="k")],
        expected=2,
    )
    assert [(r.value, r.key) for r in out] == [
        # The key goes out compact too, as every JSON object a toolkit agent parsed.
        ('{"name":"Jane","age":42,"addr":{"city":"Rome"},"id":7}', '{"id":7,"name":"keyname"}'),
        ("[1, 2]", "k"),
    ]
    assert out[0].headers["s"] == "1"


async def test_unwrap_key_value_in_a_worker(run_agent: RunAgent) -> None:
    out = await run_agent(
        agent_type="unwrap-key-value",
        configuration="{unwrapKey: true}",
        errors="{on-failure: fail}",
        records=[Record(PERSON, key=PERSON_KEY, headers={"s": "1"}), Record("no key")],
        expected=2,
    )
    assert [(r.value, r.key) for r in out] == [
        ('{"id":7,"name":"keyname"}', None),
        ("no key", None),
    ]
    assert out[0].headers["s"] == "1"


async def test_cast_in_a_worker_dead_letters_what_it_cannot_convert(
    run_agent: RunAgent, topics: dict[str, str], kafka_bootstrap: str
) -> None:
    out = await run_agent(
        agent_type="cast",
        configuration="{schema-type: INT64, part: value}",
        errors="{on-failure: dead-letter}",
        records=[
            Record("42", key="k1", headers={"s": "1"}),
            Record("forty-two", key="k2", headers={"s": "2"}),
            Record("7.9", key="k3"),
        ],
        expected=2,
    )
    assert [(r.value, r.key) for r in out] == [(42, "k1"), (7, "k3")]
    assert out[0].headers["s"] == "1"
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert (dead.record.value, dead.record.key) == ("forty-two", "k2")
    assert dead.record.headers["error-class"] == "workers.builtin.casting.CastError"
    assert "cannot cast 'forty-two' to INT64" in dead.record.headers["error-message"]
    assert dead.record.headers["s"] == "2"


async def test_flatten_in_a_worker_skips_what_is_not_an_object(run_agent: RunAgent) -> None:
    out = await run_agent(
        agent_type="flatten",
        configuration="{delimiter: '.', part: value}",
        errors="{on-failure: skip}",
        records=[
            Record(PERSON, key="k1", headers={"s": "1"}),
            Record("plain text", key="k2"),
            Record('{"a": {"b": {"c": 1}}}', key="k3"),
        ],
        expected=2,
    )
    assert [(r.value, r.key) for r in out] == [
        ('{"name":"Jane","age":42,"addr.city":"Rome"}', "k1"),
        ('{"a.b.c":1}', "k3"),
    ]
    assert out[0].headers["s"] == "1"
