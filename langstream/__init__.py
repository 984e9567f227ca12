"""LangStream's Python agent API, so LangStream agents run on Sluice unchanged.

``from langstream import SimpleRecord, Processor, AgentContext`` works as it did on LangStream
0.4. Classes need not subclass anything here: the Sluice runtime adapts them once, when it loads
them. New code should use ``from sluice import ...`` instead.
"""

from langstream.api import (
    Agent,
    AgentContext,
    AvroValue,
    Processor,
    Record,
    RecordType,
    Service,
    SimpleRecord,
    Sink,
    Source,
    TopicProducer,
)

__all__ = [
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
