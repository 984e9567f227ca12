"""How to run the local Kafka broker: the Kafka version and :class:`LocalKafkaSettings`.

Its own module so that the jar cache (:mod:`sluice.kafka.local.jars`) and the broker manager
(:mod:`sluice.kafka.local.broker`) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["KAFKA_VERSION", "LocalKafkaSettings"]

KAFKA_VERSION = "4.1.1"


@dataclass(frozen=True)
class LocalKafkaSettings:
    """How to run the local broker. The CLI fills it from flags and environment variables."""

    #: Client port on 127.0.0.1; 0 picks a free one. CLI: ``--port`` / ``SLUICE_KAFKA_PORT``.
    port: int = 9092
    #: KRaft controller port on 127.0.0.1; 0 picks a free one.
    controller_port: int = 0
    #: Topic data, configuration and logs. ``None``: ``<user data dir>/sluice/kafka``.
    #: CLI: ``--data-dir`` / ``SLUICE_KAFKA_DATA_DIR``.
    data_dir: Path | None = None
    #: Where the jars are kept. ``None``: ``<user cache dir>/sluice/kafka-<kafka_version>``.
    cache_dir: Path | None = None
    #: The ``java`` executable (a name looked up on PATH, or a path).
    java: str = "java"
    #: A JDK home; when set and ``java`` is the default, ``<java_home>/bin/java`` is used.
    #: CLI: ``JAVA_HOME``.
    java_home: Path | None = None
    #: The ``mvn`` executable; only needed while the jar cache is empty.
    maven: str = "mvn"
    kafka_version: str = KAFKA_VERSION
    #: Options for the broker's JVM; small, a local broker holds little data.
    jvm_options: tuple[str, ...] = ("-Xms64m", "-Xmx512m", "-Djava.awt.headless=true")
    #: Off by default: Sluice creates every topic an application needs up front, so a producer
    #: writing to a topic nobody created is a bug that should fail here as it does in production.
    auto_create_topics: bool = False
    #: Seconds to wait for the broker to answer a metadata request.
    start_timeout: float = 90
    #: Seconds between SIGTERM and SIGKILL when stopping.
    stop_grace: float = 15
    #: Seconds Maven may take to download the jars (first start only).
    download_timeout: float = 600

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser().absolute()
        return platformdirs.user_data_path("sluice") / "kafka"

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir.expanduser().absolute()
        return platformdirs.user_cache_path("sluice") / f"kafka-{self.kafka_version}"
