"""Every agent shape LangStream 0.4 documented, and the Sluice SDK's, run through the adapter.

The agents live in ``tests/workers/agents/`` and are loaded by ``className`` the way the worker
loads an application's ``python/`` folder.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import langstream
from langstream import SimpleRecord
from sluice.application.agent_types import AGENT_TYPES
from sluice.application.plan import PlannedAgent
from sluice.record import Record
from sluice.sdk import AgentContext
from workers.adapters import (
    AdaptedProcessor,
    AdaptedService,
    AdaptedSink,
    LangStreamContext,
    SluiceSource,
    to_record,
)
from workers.loading import load_agent

AGENTS = Path(__file__).parent / "agents"


class MemoryTopicProducer:
    """The context's topic producer, keeping what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Record]] = []

    def write(self, topic: str, record: Record) -> Future[None]:
        self.sent.append((topic, record))
        done: Future[None] = Future()
        done.set_result(None)
        return done

    async def awrite(self, topic: str, record: Record) -> None:
        self.sent.append((topic, record))


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def producer() -> MemoryTopicProducer:
    return MemoryTopicProducer()


@pytest.fixture
def context(tmp_path: Path, producer: MemoryTopicProducer) -> AgentContext:
    state = tmp_path / "state"
    state.mkdir()
    return AgentContext(
        agent_id="agent-1",
        tenant="default",
        application="app",
        state_directory=str(state),
        topic_producer=producer,
    )


async def loaded(
    type_: str, class_name: str, context: AgentContext, **config: Any
) -> tuple[Any, Any]:
    """The loaded agent (after init and start) and the user's object behind it."""
    agent = PlannedAgent(
        id="agent-1",
        type=type_,
        component=AGENT_TYPES[type_].component,
        pipeline="pipeline",
        configuration={"className": class_name, **config},
    )
    instance = load_agent(agent, context, code_dirs=[AGENTS])
    await instance.init(dict(agent.configuration))
    await instance.start()
    assert isinstance(instance, AdaptedProcessor | AdaptedSink | SluiceSource | AdaptedService)
    return instance, instance.instance


async def processor(class_name: str, context: AgentContext, **config: Any) -> Any:
    agent, _ = await loaded("python-processor", class_name, context, **config)
    return agent


# LangStream processors --------------------------------------------------------------------------


async def test_the_counter_of_the_announcement_keeps_state(context: AgentContext) -> None:
    agent = await processor("ls_agents.Exclamation", context)
    outputs = [await agent.process(Record(word)) for word in ("a", "b", "c")]
    assert outputs == [
        [Record("a!", headers={"count": "1"})],
        [Record("b!", headers={"count": "2"})],
        [Record("c!", headers={"count": "3"})],
    ]
    state = context.get_persistent_state_directory()
    assert state is not None
    assert (Path(state) / "counter.txt").read_text() == "3"


async def test_a_class_that_subclasses_nothing_with_a_one_argument_init(
    context: AgentContext,
) -> None:
    agent = await processor("ls_agents.Suffix", context, suffix="?")
    assert await agent.process(Record("why")) == [Record("why?")]


async def test_langstream_code_gets_a_simple_record_with_every_field(
    context: AgentContext,
) -> None:
    agent, user = await loaded("python-processor", "ls_agents.Echo", context)
    given = Record({"q": 1}, key="k", headers={"session": "s1"}, origin="in", timestamp=5)
    assert await agent.process(given) == [given]
    [seen] = user.seen
    assert isinstance(seen, SimpleRecord)
    assert seen.headers() == [("session", "s1")]
    assert (seen.value(), seen.key(), seen.origin(), seen.timestamp()) == ({"q": 1}, "k", "in", 5)


async def test_records_returned_as_simple_record_dict_tuple_and_list(
    context: AgentContext,
) -> None:
    agent = await processor("ls_agents.Shapes", context)
    assert await agent.process(Record("in")) == [
        Record("simple", key="k1", headers={"h": "1"}, origin="o", timestamp=7),
        Record("dict", key="k2", headers={"h": "2"}),
        Record("tuple", key="k3", headers={"h": "3"}),
        Record("list"),
    ]


async def test_header_values_become_strings(context: AgentContext) -> None:
    agent = await processor("ls_agents.Headers", context)
    [out] = await agent.process(Record("v"))
    assert dict(out.headers) == {"n": "1", "b": "bytes", "d": json.dumps({"a": [1]}), "s": "s"}


async def test_process_returning_a_concurrent_future(context: AgentContext) -> None:
    agent = await processor("ls_agents.Later", context)
    assert await agent.process(Record(21)) == [Record(42)]
    await agent.close()


async def test_async_def_process(context: AgentContext) -> None:
    agent = await processor("ls_agents.AsyncUpper", context)
    assert await agent.process(Record("abc", key="k")) == [Record("ABC", key="k")]


async def test_an_output_of_an_unsupported_type_is_a_type_error(context: AgentContext) -> None:
    agent = await processor("ls_agents.Odd", context)
    with pytest.raises(TypeError, match=r"process\(\) returned int"):
        await agent.process(Record("x"))


async def test_sync_hooks_run_off_the_event_loop_thread(context: AgentContext) -> None:
    agent, user = await loaded("python-processor", "ls_agents.Threads", context)
    [out] = await agent.process(Record("x"))
    await agent.close()
    loop_thread = threading.get_ident()
    assert out.value != loop_thread
    assert set(user.threads) == {"init", "start", "process", "close"}
    assert loop_thread not in user.threads.values()


async def test_topic_producer_takes_langstream_records_from_sync_code(
    context: AgentContext, producer: MemoryTopicProducer
) -> None:
    agent = await processor("ls_agents.Forwarder", context)
    assert await agent.process(Record("v")) == []
    assert producer.sent == [("audit", Record("v", headers={"seen": "true"}))]


async def test_topic_producer_awrite_takes_tuples(
    context: AgentContext, producer: MemoryTopicProducer
) -> None:
    agent = await processor("ls_agents.AsyncForwarder", context)
    assert await agent.process(Record("v")) == []
    assert producer.sent == [("audit", Record("v", key="key"))]


def test_langstream_context_has_the_sluice_context_attributes(context: AgentContext) -> None:
    wrapped = LangStreamContext(context)
    assert wrapped.get_persistent_state_directory() == context.get_persistent_state_directory()
    assert (wrapped.agent_id, wrapped.tenant, wrapped.application) == ("agent-1", "default", "app")
    assert wrapped.get_topic_producer() is wrapped.get_topic_producer()
    assert isinstance(wrapped, langstream.AgentContext)
    assert isinstance(wrapped.get_topic_producer(), langstream.TopicProducer)


# LangStream sources and sinks -------------------------------------------------------------------


async def test_a_source_reading_dicts_gets_commit_once_per_record(
    context: AgentContext,
) -> None:
    source, user = await loaded("python-source", "ls_agents.Numbers", context, count=3)
    first = await source.read()
    second = await source.read()
    assert first == [Record(0, key="0"), Record(1, key="1")]
    assert second == [Record(2, key="2")]
    assert await source.read() == []
    await source.commit(first)
    await source.commit(second)
    assert [(r.value(), r.key()) for r in user.committed] == [(0, "0"), (1, "1"), (2, "2")]
    assert all(isinstance(r, SimpleRecord) for r in user.committed)


async def test_a_source_keeps_the_records_it_read_in_a_set(context: AgentContext) -> None:
    source, user = await loaded("python-source", "ls_agents.Pending", context, count=3)
    batch = await source.read()
    assert [r.value for r in batch] == ["same", "same", "same"]
    assert len(user.pending) == 3
    await source.commit(batch[:2])
    assert len(user.pending) == 1
    assert [r in user.pending for r in user.committed] == [False, False]
    await source.commit(batch[2:])
    assert user.pending == set()


async def test_langstream_code_prints_records_as_langstream_did(context: AgentContext) -> None:
    agent = await processor("ls_agents.Describe", context)
    given = Record("v", key="k", headers={"h": "1"}, origin="in", timestamp=5)
    assert await agent.process(given) == [
        Record("SimpleRecord(value=v, key=k, origin=in,timestamp=5, headers=[('h', '1')])")
    ]


async def test_permanent_failure_gets_the_record_read_returned(context: AgentContext) -> None:
    source, user = await loaded("python-source", "ls_agents.Handled", context)
    [record] = await source.read()
    error = RuntimeError("could not write")
    await source.permanent_failure(record, error)
    assert user.failures == [(user.given, error)]


async def test_langstream_default_permanent_failure_reraises(context: AgentContext) -> None:
    source, _ = await loaded("python-source", "ls_agents.Failing", context)
    [record] = await source.read()
    with pytest.raises(RuntimeError, match="could not write"):
        await source.permanent_failure(record, RuntimeError("could not write"))


async def test_a_sink_whose_write_returns_none(context: AgentContext) -> None:
    sink, user = await loaded("python-sink", "ls_agents.Collect", context)
    await sink.write(Record("a"))
    await sink.write(Record("b"))
    assert user.written == ["a", "b"]


async def test_a_sink_whose_write_returns_a_future(context: AgentContext) -> None:
    sink, user = await loaded("python-sink", "ls_agents.CollectLater", context)
    await sink.write(Record("a"))
    assert user.written == ["a"]  # the future was awaited before write() returned
    await sink.close()


async def test_a_sink_error_reaches_the_runtime(context: AgentContext) -> None:
    sink, _ = await loaded("python-sink", "ls_agents.Broken", context)
    with pytest.raises(ValueError, match="cannot write a"):
        await sink.write(Record("a"))


# Services -------------------------------------------------------------------------------------


async def test_a_langstream_service_runs_main(context: AgentContext) -> None:
    service, user = await loaded("python-service", "ls_agents.Main", context)
    assert service.app() is None
    await asyncio.to_thread(service.main)
    assert user.ran.is_set()
    assert user.thread != threading.get_ident()


async def test_an_async_main_runs_in_its_own_loop(context: AgentContext) -> None:
    service, user = await loaded("python-service", "ls_agents.AsyncMain", context)
    assert service.app() is None
    await asyncio.to_thread(service.main)
    assert user.ran


async def test_a_langstream_service_with_an_app_attribute_runs_main(
    context: AgentContext,
) -> None:
    service, user = await loaded("python-service", "ls_agents.MainWithAnApp", context)
    assert service.app() is None
    await asyncio.to_thread(service.main)
    assert user.ran


async def test_a_duck_typed_service_with_an_app_method(context: AgentContext) -> None:
    service, _ = await loaded("python-service", "ls_agents.AppMethodOnly", context)
    # the module the worker imported from the agents folder (not on the test session's path)
    assert service.app() is importlib.import_module("ls_agents").asgi


async def test_a_sluice_service_returns_its_asgi_app(context: AgentContext) -> None:
    service, _ = await loaded("python-service", "sluice_agents.App", context)
    assert service.app() is importlib.import_module("sluice_agents").hello


async def test_an_async_app_is_resolved_at_start(context: AgentContext) -> None:
    service, _ = await loaded("python-service", "sluice_agents.AsyncApp", context)
    assert service.app() is importlib.import_module("sluice_agents").hello


async def test_a_sluice_service_with_only_main(context: AgentContext) -> None:
    service, user = await loaded("python-service", "sluice_agents.MainOnly", context)
    assert service.app() is None
    await asyncio.to_thread(service.main)
    assert user.ran


# Sluice SDK subclasses --------------------------------------------------------------------------


async def test_sluice_process_returning_a_single_record(context: AgentContext) -> None:
    agent = await processor("sluice_agents.Upper", context)
    assert await agent.process(Record("abc", headers={"h": "v"})) == [
        Record("ABC", headers={"h": "v"})
    ]


async def test_sluice_process_returning_none_drops(context: AgentContext) -> None:
    agent = await processor("sluice_agents.DropAll", context)
    assert await agent.process(Record("abc")) == []


async def test_sluice_async_hooks(context: AgentContext) -> None:
    agent, user = await loaded("python-processor", "sluice_agents.AsyncSplit", context)
    assert user.started
    assert user.context is context
    assert await agent.process(Record("a b")) == [Record("a"), Record("b")]


async def test_sluice_code_gets_sluice_records_and_the_whole_configuration(
    context: AgentContext,
) -> None:
    agent, user = await loaded("python-processor", "sluice_agents.Given", context, extra=1)
    given = Record("v", headers={"h": "1"})
    [out] = await agent.process(given)
    assert out is given
    assert user.given == [given]
    assert user.config == {"className": "sluice_agents.Given", "extra": 1}


async def test_sluice_source_commits_each_batch_once(context: AgentContext) -> None:
    source, user = await loaded("python-source", "sluice_agents.Batches", context)
    batch = await source.read()
    assert batch == [Record("a"), Record("b"), Record("c")]
    await source.commit(batch[:2])
    error = RuntimeError("lost")
    await source.permanent_failure(batch[2], error)
    assert user.commits == [batch[:2]]
    assert user.failures == [(batch[2], error)]


async def test_sluice_sink_write_runs_in_a_thread(context: AgentContext) -> None:
    sink, user = await loaded("python-sink", "sluice_agents.Written", context)
    await sink.write(Record("a"))
    assert user.written == [Record("a")]
    assert user.thread != threading.get_ident()


# Record conversion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"value": 1, "kye": 2}, "unknown keys kye"),
        ({"key": 1}, "needs a 'value'"),
        ((), "has 0 items"),
        ((1, 2, 3, 4, 5, 6), "has 6 items"),
        (object(), "unsupported record type object"),
        ({"value": 1, "headers": [("a",)]}, r"\(name, value\) pair"),
    ],
)
def test_unsupported_record_shapes(item: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        to_record(item)


def test_headers_may_be_a_mapping_in_a_dict() -> None:
    assert to_record({"value": 1, "headers": {"a": 2}}) == Record(1, headers={"a": "2"})
