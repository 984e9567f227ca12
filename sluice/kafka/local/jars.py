"""What the local broker runs on: a Java 17+ and the Kafka jars, kept in a cache.

The jars are resolved once per Kafka version with Maven, from the ``pom.xml`` shipped in this
package, into the cache directory; later starts only read that cache (:mod:`sluice.jvm` does
both, for the broker and for camel-source). The cache's ``jars.json`` marker records the Kafka
version, the pom's digest and the jar names, so a cache from another version or pom, or a
half-written one, is downloaded again.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sluice.errors import LocalKafkaError
from sluice.jvm import MIN_JAVA, Progress, find_java, maven_classpath
from sluice.kafka.local.settings import LocalKafkaSettings

__all__ = ["MIN_JAVA", "Progress", "check_java", "ensure_jars"]


async def check_java(settings: LocalKafkaSettings) -> str:
    """The path of a ``java`` that is at least version 17, or a :class:`LocalKafkaError`."""
    return await find_java(settings.java, settings.java_home, error=LocalKafkaError)


async def ensure_jars(settings: LocalKafkaSettings, progress: Progress | None = None) -> list[Path]:
    """The broker's classpath, downloading it with Maven into the cache if not there yet."""
    version = settings.kafka_version
    return await maven_classpath(
        (resources.files("sluice.kafka.local") / "pom.xml").read_bytes(),
        settings.resolved_cache_dir(),
        what=f"the Kafka {version} jars",
        properties={"kafka.version": version},
        tags={"kafka_version": version},
        maven=settings.maven,
        within=settings.download_timeout,
        progress=progress,
        error=LocalKafkaError,
    )
