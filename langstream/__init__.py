"""LangStream's Python agent API, so LangStream agents run on Sluice unchanged.

The same modules and names as the published ``langstream-ai`` 0.4 package (``langstream.api``
and ``langstream.util``), plus the later ``TopicProducer``. Classes need not subclass anything
here: the Sluice runtime adapts them once, when it loads them. New code should use
``from sluice import ...`` instead.
"""

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
from langstream.util import AvroValue, SimpleRecord

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
