"""The local Kafka broker: a real Apache Kafka run as a JVM child process, for ``sluice run``,
``sluice kafka`` and the tests.

Its own package, apart from the client adapter in :mod:`sluice.kafka`, because only local runs
need it: :mod:`~sluice.kafka.local.settings` (the Kafka version and :class:`LocalKafkaSettings`),
:mod:`~sluice.kafka.local.jars` (Java and the jar cache, from the ``pom.xml`` shipped here),
:mod:`~sluice.kafka.local.processes` (the JVM process) and :mod:`~sluice.kafka.local.broker`
(starting, finding and stopping a broker). This module re-exports what callers use.
"""

from __future__ import annotations

from sluice.kafka.local.broker import BrokerStatus, LocalKafka, broker_status, stop_broker
from sluice.kafka.local.jars import check_java, ensure_jars
from sluice.kafka.local.settings import KAFKA_VERSION, LocalKafkaSettings

__all__ = [
    "KAFKA_VERSION",
    "BrokerStatus",
    "LocalKafka",
    "LocalKafkaSettings",
    "broker_status",
    "check_java",
    "ensure_jars",
    "stop_broker",
]
