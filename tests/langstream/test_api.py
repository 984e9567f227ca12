"""``langstream`` and ``langstream.api``: names, abstract methods and defaults of langstream-ai 0.4,
with the later TopicProducer and get_topic_producer() added as non-abstract methods."""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Future
from typing import Any, get_args, get_origin

import pytest

import langstream
import langstream.api
from langstream.api import (
    Agent,
    AgentContext,
    Processor,
    Record,
    RecordType,
    Service,
    Sink,
    Source,
    TopicProducer,
)
from langstream.util import SimpleRecord


def test_package_names() -> None:
    # langstream-ai 0.4's names, and TopicProducer (LangStream 0.5 and later).
    assert sorted(langstream.__all__) == [
        "Agent",
        "AgentContext",
        "AvroValue",
        "Processor",
        "Record",
        "RecordType",
        "Service",
        "SimpleRecord",
        "Sink",
        "Source",
        "TopicProducer",
    ]
    for name in langstream.__all__:
        assert getattr(langstream, name) is not None


def test_api_module_names() -> None:
    assert sorted(langstream.api.__all__) == [
        "Agent",
        "AgentContext",
        "Processor",
        "Record",
        "RecordType",
        "Service",
        "Sink",
        "Source",
        "TopicProducer",
    ]
    assert not hasattr(langstream.api, "SimpleRecord")  # lives in langstream.util


def test_record_type_is_the_union_of_record_shapes() -> None:
    assert {get_origin(t) or t for t in get_args(RecordType)} == {
        Record,
        dict,
        list,
        tuple,
    }


@pytest.mark.parametrize(
    ("cls", "abstract"),
    [
        (Record, {"key", "value", "origin", "timestamp", "headers"}),
        (AgentContext, set()),
        (TopicProducer, set()),
        (Agent, set()),
        (Source, {"read"}),
        (Processor, {"process"}),
        (Sink, {"write"}),
        (Service, {"main"}),
    ],
)
def test_abstract_methods(cls: type, abstract: set[str]) -> None:
    assert set(getattr(cls, "__abstractmethods__", ())) == abstract


@pytest.mark.parametrize("cls", [Source, Processor, Sink, Service])
def test_an_agent_missing_its_hook_cannot_be_instantiated(cls: type) -> None:
    with pytest.raises(TypeError, match="abstract"):
        type("Incomplete", (cls,), {})()


@pytest.mark.parametrize(
    ("function", "parameters"),
    [
        (Agent.init, ["self", "config", "context"]),
        (Agent.start, ["self"]),
        (Agent.close, ["self"]),
        (Agent.agent_info, ["self"]),
        (Source.read, ["self"]),
        (Source.commit, ["self", "record"]),
        (Source.permanent_failure, ["self", "record", "error"]),
        (Processor.process, ["self", "record"]),
        (Sink.write, ["self", "record"]),
        (Service.main, ["self"]),
        (AgentContext.get_persistent_state_directory, ["self"]),
        (AgentContext.get_topic_producer, ["self"]),
        (TopicProducer.write, ["self", "topic", "record"]),
        (TopicProducer.awrite, ["self", "topic", "record"]),
    ],
)
def test_hook_parameters(function: Any, parameters: list[str]) -> None:
    assert list(inspect.signature(function).parameters) == parameters


# Agent defaults ---------------------------------------------------------------------------------


class Upper(Processor):
    def process(self, record: Record) -> list[RecordType]:
        return [SimpleRecord(str(record.value()).upper())]


class Reader(Source):
    def read(self) -> list[RecordType]:
        return []


def test_agent_hooks_default_to_no_ops() -> None:
    agent = Upper()
    agent.init({"a": 1}, AgentContext())
    agent.start()
    agent.close()
    assert agent.agent_info() == {}
    [out] = agent.process(SimpleRecord("x"))
    assert isinstance(out, SimpleRecord)
    assert out.value() == "X"


def test_source_commit_is_a_no_op() -> None:
    Reader().commit(SimpleRecord("x"))


def test_source_permanent_failure_reraises_the_error_given() -> None:
    error = RuntimeError("lost")
    with pytest.raises(RuntimeError) as raised:
        Reader().permanent_failure(SimpleRecord("x"), error)
    assert raised.value is error


def test_classes_are_abcs_of_each_other() -> None:
    assert issubclass(Source, Agent)
    assert issubclass(Processor, Agent)
    assert issubclass(Sink, Agent)
    assert issubclass(Service, Agent)
    assert issubclass(SimpleRecord, Record)
    assert not issubclass(AgentContext, Agent)


# AgentContext: 0.4 contexts and 0.6 contexts ---------------------------------------------------


class DiskOnlyContext(AgentContext):
    """The context a LangStream 0.4 runtime gave agents."""

    def get_persistent_state_directory(self) -> str | None:
        return "/state"


class ProducerOnlyContext(AgentContext):
    """A context of the later API that only supplies the topic producer."""

    def __init__(self, producer: TopicProducer) -> None:
        self.producer = producer

    def get_topic_producer(self) -> TopicProducer:
        return self.producer


class Collecting(TopicProducer):
    def __init__(self) -> None:
        self.sent: list[tuple[str, RecordType]] = []

    def write(self, topic: str, record: RecordType) -> Future[None]:
        self.sent.append((topic, record))
        done: Future[None] = Future()
        done.set_result(None)
        return done


def test_a_0_4_context_instantiates_without_a_topic_producer() -> None:
    context = DiskOnlyContext()
    assert context.get_persistent_state_directory() == "/state"
    with pytest.raises(NotImplementedError, match="DiskOnlyContext has no topic producer"):
        context.get_topic_producer()


def test_a_later_context_instantiates_without_a_state_directory() -> None:
    producer = Collecting()
    context = ProducerOnlyContext(producer)
    assert context.get_persistent_state_directory() is None
    context.get_topic_producer().write("out", {"value": 1}).result()
    assert producer.sent == [("out", {"value": 1})]


def test_the_base_context_has_no_disk() -> None:
    assert AgentContext().get_persistent_state_directory() is None


def test_an_agent_init_takes_either_context() -> None:
    seen: list[AgentContext] = []

    class Remember(Upper):
        def init(self, config: dict[str, Any], context: AgentContext) -> None:
            seen.append(context)

    for context in (DiskOnlyContext(), ProducerOnlyContext(Collecting())):
        Remember().init({}, context)
    assert [type(c).__name__ for c in seen] == ["DiskOnlyContext", "ProducerOnlyContext"]


# TopicProducer ----------------------------------------------------------------------------------


def test_awrite_is_async() -> None:
    assert inspect.iscoroutinefunction(TopicProducer.awrite)
    assert not inspect.iscoroutinefunction(TopicProducer.write)


def test_a_producer_implementing_write_only_says_awrite_is_missing() -> None:
    producer = Collecting()
    with pytest.raises(NotImplementedError, match=r"Collecting does not implement awrite\(\)"):
        asyncio.run(producer.awrite("out", ("v",)))


def test_a_producer_implementing_nothing_says_write_is_missing() -> None:
    with pytest.raises(NotImplementedError, match=r"TopicProducer does not implement write\(\)"):
        TopicProducer().write("out", ("v",))
