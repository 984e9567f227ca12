"""Sluice: real-time AI pipelines as CloudEvents on Kafka.

The agent SDK: ``from sluice import Processor, Record, AgentContext``.
"""

from sluice.errors import InvalidApplication, KafkaError, LocalKafkaError, SluiceError
from sluice.record import Record
from sluice.sdk import (
    Agent,
    AgentContext,
    FatalError,
    Processor,
    Retry,
    Service,
    Sink,
    SkipRecord,
    Source,
    TopicProducer,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentContext",
    "FatalError",
    "InvalidApplication",
    "KafkaError",
    "LocalKafkaError",
    "Processor",
    "Record",
    "Retry",
    "Service",
    "Sink",
    "SkipRecord",
    "SluiceError",
    "Source",
    "TopicProducer",
    "__version__",
]
