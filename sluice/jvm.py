"""Java and Maven for the JVM children Sluice runs: the local Kafka broker and camel-source.

- :func:`find_java`: the path of a ``java`` that is at least version 17.
- :func:`maven_classpath`: the jars of a ``pom.xml``, resolved once with Maven into a cache
  directory; later calls only read that cache. A ``jars.json`` marker written last records the
  pom's digest and the jar names, so a cache made from another pom, or a half-written one, is
  downloaded again. The download happens in a staging folder next to the cache, which is moved
  into place when complete, so concurrent first starts do not see each other's partial work.
- :func:`run`: a short command with a timeout (``java -version``, Maven).

Failures raise the error class the caller passes (each user of this module has its own, such
as :class:`~sluice.errors.LocalKafkaError`), so messages reach users in their usual form.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sluice.errors import SluiceError

__all__ = [
    "JAVA_HINT",
    "MIN_JAVA",
    "ErrorClass",
    "Progress",
    "cached_jars",
    "find_java",
    "last_lines",
    "maven_classpath",
    "run",
]

MIN_JAVA = 17
JAVA_HINT = f"Java {MIN_JAVA}+ is required, install a JDK or set JAVA_HOME"
_MARKER = "jars.json"

#: Receives short messages ("downloading Kafka jars ...") for a spinner.
Progress = Callable[[str], None]
#: The exception class a caller wants failures raised as; it takes one message argument.
ErrorClass = type[SluiceError]


async def find_java(
    java: str = "java", java_home: Path | None = None, *, error: ErrorClass = SluiceError
) -> str:
    """The path of a ``java`` that is at least version 17.

    ``java_home`` (``JAVA_HOME``) wins when ``java`` is the default name; otherwise ``java`` is
    a path or a name looked up on ``PATH``.
    """
    if java_home is not None and java == "java":
        candidate: str | None = str(java_home / "bin" / "java")
        where = f"JAVA_HOME={java_home}"
    else:
        candidate = shutil.which(java)
        where = f"{java!r}"
    if candidate is None or not os.access(candidate, os.X_OK):
        raise error(f"Java was not found ({where}); {JAVA_HINT}")
    code, output = await run([candidate, "-version"], within=60, error=error)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if code != 0 or match is None:
        raise error(
            f"could not tell the version of {candidate}; {JAVA_HINT}\n" + last_lines(output)
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_402" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise error(f"found Java {major} at {candidate}; {JAVA_HINT}")
    return candidate


async def maven_classpath(
    pom: bytes,
    cache: Path,
    *,
    what: str,
    properties: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    maven: str = "mvn",
    within: float = 600,
    progress: Progress | None = None,
    error: ErrorClass = SluiceError,
) -> list[Path]:
    """The jars ``pom`` depends on (transitively), downloading them into ``cache`` if needed.

    ``what`` names the jars in messages ("the Kafka 4.1.1 jars"); ``properties`` are passed to
    Maven as ``-Dname=value``; ``tags`` are recorded in the marker and must match for the cache
    to be used (a property that changes the jars belongs there too, under any name).
    """
    properties = dict(properties or {})
    tags = dict(tags or {})
    digest = hashlib.sha256(pom).hexdigest()
    jars = cached_jars(cache, digest, tags)
    if jars is not None:
        return jars
    executable = shutil.which(maven)
    if executable is None:
        raise error(
            f"Maven ({maven!r}) was not found; it is needed once, to download {what} into "
            f"{cache}. Install Maven and try again."
        )
    if progress is not None:
        progress(f"downloading {what} with Maven (first run only)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        (staging / "pom.xml").write_bytes(pom)
        code, output = await run(
            [
                executable,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(staging / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging / 'lib'}",
                *(f"-D{name}={value}" for name, value in properties.items()),
            ],
            within=within,
            cwd=staging,
            error=error,
        )
        names = sorted(p.name for p in (staging / "lib").glob("*.jar"))
        if code != 0 or not names:
            raise error(
                f"Maven could not download {what} (exit code {code}):\n" + last_lines(output)
            )
        marker = {**tags, "pom_sha256": digest, "jars": names}
        (staging / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        (staging / "pom.xml").unlink()
        _publish(staging, cache, digest, tags, what, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jars = cached_jars(cache, digest, tags)
    if jars is None:
        raise error(f"the jar cache {cache} is incomplete after downloading {what}")
    return jars


def cached_jars(cache: Path, digest: str, tags: dict[str, str]) -> list[Path] | None:
    """The jars of a complete cache made from the pom with this digest, else None."""
    try:
        marker = json.loads((cache / _MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if marker.get("pom_sha256") != digest:
        return None
    if any(marker.get(name) != value for name, value in tags.items()):
        return None
    jars = [cache / "lib" / name for name in marker.get("jars", [])]
    return jars if jars and all(jar.is_file() for jar in jars) else None


def _publish(
    staging: Path,
    cache: Path,
    digest: str,
    tags: dict[str, str],
    what: str,
    error: ErrorClass,
) -> None:
    """Move a complete download into place; a concurrent start may have won the race."""
    for _ in range(2):
        try:
            os.replace(staging, cache)
            return
        except OSError:
            if cached_jars(cache, digest, tags) is not None:
                return  # another process published the same jars meanwhile
            shutil.rmtree(cache, ignore_errors=True)  # an older or incomplete cache
    raise error(f"could not move the downloaded {what} into {cache}")


async def run(
    argv: list[str], *, within: float, cwd: Path | None = None, error: ErrorClass = SluiceError
) -> tuple[int, str]:
    """Run a short command; its exit code and its stdout and stderr together."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
        )
    except OSError as exc:
        raise error(f"could not run {argv[0]}: {exc}") from exc
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise error(f"{Path(argv[0]).name} did not finish within {within:g} s") from None
    assert process.returncode is not None
    return process.returncode, stdout.decode(errors="replace")


def last_lines(text: str, lines: int = 30) -> str:
    """The last non-blank lines of command output, without colours, indented."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # Maven's colours
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in kept) or "  (no output)"
