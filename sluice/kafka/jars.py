"""What the local broker runs on: a Java 17+ and the Kafka jars, kept in a cache.

The jars are resolved once per Kafka version with Maven, from the ``pom.xml`` shipped in this
package, into the cache directory; later starts only read that cache. A ``jars.json`` marker
written last records the Kafka version, the pom's digest and the jar names, so a cache from
another version or pom, or a half-written one, is downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from sluice.errors import LocalKafkaError
from sluice.kafka.processes import last_lines, run
from sluice.kafka.settings import LocalKafkaSettings

__all__ = ["MIN_JAVA", "Progress", "check_java", "ensure_jars"]

MIN_JAVA = 17
_JAVA_HINT = f"Java {MIN_JAVA}+ is required, install a JDK or set JAVA_HOME"
_MARKER = "jars.json"

#: Receives short messages ("downloading Kafka jars ...") for a spinner.
Progress = Callable[[str], None]


async def check_java(settings: LocalKafkaSettings) -> str:
    """The path of a ``java`` that is at least version 17, or a :class:`LocalKafkaError`."""
    if settings.java_home is not None and settings.java == "java":
        candidate: str | None = str(settings.java_home / "bin" / "java")
        where = f"JAVA_HOME={settings.java_home}"
    else:
        candidate = shutil.which(settings.java)
        where = f"{settings.java!r}"
    if candidate is None or not os.access(candidate, os.X_OK):
        raise LocalKafkaError(f"Java was not found ({where}); {_JAVA_HINT}")
    code, output = await run([candidate, "-version"], within=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if code != 0 or match is None:
        raise LocalKafkaError(
            f"could not tell the version of {candidate}; {_JAVA_HINT}\n" + last_lines(output)
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_402" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalKafkaError(f"found Java {major} at {candidate}; {_JAVA_HINT}")
    return candidate


async def ensure_jars(settings: LocalKafkaSettings, progress: Progress | None = None) -> list[Path]:
    """The broker's classpath, downloading it with Maven into the cache if not there yet."""
    cache = settings.resolved_cache_dir()
    pom = (resources.files("sluice.kafka") / "pom.xml").read_bytes()
    digest = hashlib.sha256(pom).hexdigest()
    jars = _cached_jars(cache, settings.kafka_version, digest)
    if jars is not None:
        return jars
    maven = shutil.which(settings.maven)
    if maven is None:
        raise LocalKafkaError(
            f"Maven ({settings.maven!r}) was not found; it is needed once, to download the "
            f"Kafka {settings.kafka_version} jars into {cache}. Install Maven and try again."
        )
    if progress is not None:
        progress(f"downloading the Kafka {settings.kafka_version} jars with Maven (first run only)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        (staging / "pom.xml").write_bytes(pom)
        code, output = await run(
            [
                maven,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(staging / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging / 'lib'}",
                f"-Dkafka.version={settings.kafka_version}",
            ],
            within=settings.download_timeout,
            cwd=staging,
        )
        names = sorted(p.name for p in (staging / "lib").glob("*.jar"))
        if code != 0 or not names:
            raise LocalKafkaError(
                f"Maven could not download the Kafka {settings.kafka_version} jars "
                f"(exit code {code}):\n" + last_lines(output)
            )
        marker = {"kafka_version": settings.kafka_version, "pom_sha256": digest, "jars": names}
        (staging / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        (staging / "pom.xml").unlink()
        _publish(staging, cache, settings.kafka_version, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jars = _cached_jars(cache, settings.kafka_version, digest)
    if jars is None:
        raise LocalKafkaError(f"the Kafka jar cache {cache} is incomplete after downloading")
    return jars


def _cached_jars(cache: Path, version: str, digest: str) -> list[Path] | None:
    try:
        marker = json.loads((cache / _MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if marker.get("kafka_version") != version or marker.get("pom_sha256") != digest:
        return None
    jars = [cache / "lib" / name for name in marker.get("jars", [])]
    return jars if jars and all(jar.is_file() for jar in jars) else None


def _publish(staging: Path, cache: Path, version: str, digest: str) -> None:
    """Move a complete download into place; a concurrent start may have won the race."""
    for _ in range(2):
        try:
            os.replace(staging, cache)
            return
        except OSError:
            if _cached_jars(cache, version, digest) is not None:
                return  # another process published the same jars meanwhile
            shutil.rmtree(cache, ignore_errors=True)  # an older or incomplete cache
    raise LocalKafkaError(f"could not move the downloaded Kafka jars into {cache}")
