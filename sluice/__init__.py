"""Sluice: real-time AI pipelines as CloudEvents on Kafka."""

from sluice.errors import InvalidApplication, KafkaError, LocalKafkaError, SluiceError
from sluice.record import Record

__version__ = "0.1.0"

__all__ = [
    "InvalidApplication",
    "KafkaError",
    "LocalKafkaError",
    "Record",
    "SluiceError",
    "__version__",
]
