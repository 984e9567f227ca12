"""The jars of a camel-source JVM: the core set plus the application's dependencies.

The core set (``pom.xml`` in this package) holds camel-main, the YAML DSL, the HTTP and Jackson
pieces of the bridge, and the ``timer``, ``file`` and ``log`` components. The application's
``configuration.yaml`` ``dependencies`` are added to it: Maven coordinates
(``group:artifact[:version]``; a Camel artifact always gets the version of the Camel BOM, as
Camel's jars only work with the core of their own release), or, as LangStream wrote them, URLs
of jars in a Maven repository (``.../maven2/group path/artifact/version/artifact-version.jar``),
which are turned into coordinates so that Maven also brings the jar's own dependencies and
checks what it downloads. Each distinct set is resolved once with Maven into
``<cache>/camel-<version>-<digest>`` (:mod:`sluice.jvm`).

Which URI schemes the jars provide is read from the jars themselves (Camel's
``META-INF/services/org/apache/camel/component/<scheme>`` entries), so an unknown scheme is
reported before a JVM starts, with the dependency to add.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from sluice.application.model import DependencySpec
from sluice.jvm import Progress, maven_classpath
from workers.camel.settings import CamelSettings
from workers.errors import CamelSourceError

__all__ = [
    "CAMEL_GROUP",
    "Coordinates",
    "camel_classpath",
    "camel_pom",
    "component_schemes",
    "coordinates",
    "managed",
]

CAMEL_GROUP = "org.apache.camel"
_MARK = "<!-- dependencies of the application -->"
_SERVICES = "META-INF/services/org/apache/camel/component/"
_PART = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class Coordinates:
    """Maven coordinates; ``version`` None means "as the Camel BOM manages it"."""

    group: str
    artifact: str
    version: str | None = None
    classifier: str | None = None

    def __str__(self) -> str:
        parts = [self.group, self.artifact]
        if self.classifier:
            parts += ["jar", self.classifier]
        return ":".join([*parts, self.version] if self.version else parts)

    def to_xml(self) -> str:
        fields = [("groupId", self.group), ("artifactId", self.artifact)]
        if self.version:
            fields.append(("version", self.version))
        if self.classifier:
            fields.append(("classifier", self.classifier))
        inner = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields)
        return f"    <dependency>{inner}</dependency>"


def coordinates(dependency: DependencySpec) -> Coordinates:
    """The coordinates of a ``configuration.dependencies`` entry, or a ValueError saying why not.

    >>> coordinates(DependencySpec(maven="org.apache.camel:camel-quartz"))
    Coordinates(group='org.apache.camel', artifact='camel-quartz', version=None, classifier=None)
    """
    if dependency.maven:
        return _from_maven(dependency.maven)
    if dependency.url:
        return _from_url(dependency.url)
    raise ValueError("a dependency needs maven coordinates or a url")


def _from_maven(text: str) -> Coordinates:
    parts = text.strip().split(":")
    if len(parts) not in (2, 3, 4, 5) or not all(_PART.fullmatch(p) for p in parts):
        raise ValueError(
            f"{text!r} is not Maven coordinates (group:artifact[:version], or "
            "group:artifact:jar[:classifier]:version)"
        )
    if len(parts) == 2:
        return Coordinates(parts[0], parts[1])
    if len(parts) == 3:
        return Coordinates(parts[0], parts[1], parts[2])
    if parts[2] != "jar":
        raise ValueError(f"{text!r}: only jar dependencies can be put on the classpath")
    classifier = parts[3] if len(parts) == 5 else None
    return Coordinates(parts[0], parts[1], parts[-1], classifier)


def _from_url(url: str) -> Coordinates:
    path = urlparse(url).path
    _, found, tail = path.partition("/maven2/")
    segments = tail.split("/") if found else []
    if len(segments) < 4 or not segments[-1].endswith(".jar"):
        raise ValueError(
            f"{url}: only jars in a Maven repository (.../maven2/<group path>/<artifact>/"
            "<version>/<artifact>-<version>.jar) or maven coordinates (group:artifact:version) "
            "can be used"
        )
    *group, artifact, version, name = segments
    stem = f"{artifact}-{version}"
    if not name.startswith(stem):
        raise ValueError(f"{url}: the file name does not match {artifact} {version}")
    classifier = name[len(stem) : -len(".jar")].lstrip("-") or None
    return Coordinates(".".join(group), artifact, version, classifier)


def managed(wanted: Coordinates, camel_version: str) -> Coordinates:
    """``wanted``, with the version left to the Camel BOM if it is a Camel artifact.

    Camel's jars only work with the core of the same release, so a component an application
    lists with another version (as LangStream applications did, for LangStream's Camel) is
    taken at ``camel_version``.
    """
    if wanted.group == CAMEL_GROUP and wanted.version not in (None, camel_version):
        return replace(wanted, version=None)
    return wanted


def camel_pom(dependencies: Iterable[Coordinates]) -> bytes:
    """The core pom with ``dependencies`` added."""
    template = (resources.files("workers.camel") / "pom.xml").read_text(encoding="utf-8")
    added = "\n".join(c.to_xml() for c in dependencies)
    return template.replace(_MARK, f"{_MARK}\n{added}" if added else _MARK).encode("utf-8")


async def camel_classpath(settings: CamelSettings, progress: Progress | None = None) -> list[Path]:
    """The jars of the core set plus ``settings.dependencies``, from the cache or Maven."""
    wanted: list[Coordinates] = []
    for dependency in settings.dependencies:
        try:
            wanted.append(managed(coordinates(dependency), settings.camel_version))
        except ValueError as error:
            name = f" ({dependency.name})" if dependency.name else ""
            raise CamelSourceError(f"configuration.yaml dependency{name}: {error}") from None
    pom = camel_pom(wanted)
    version = settings.camel_version
    digest = hashlib.sha256(pom).hexdigest()[:12]
    added = f" and {', '.join(map(str, wanted))}" if wanted else ""
    return await maven_classpath(
        pom,
        settings.resolved_cache_dir() / f"camel-{version}-{digest}",
        what=f"the Camel {version} jars{added}",
        properties={"camel.version": version},
        tags={"camel_version": version},
        maven=settings.maven,
        within=settings.download_timeout,
        progress=progress,
        error=CamelSourceError,
    )


def component_schemes(jars: Sequence[Path]) -> frozenset[str]:
    """The URI schemes the Camel components in ``jars`` register."""
    schemes: set[str] = set()
    for jar in jars:
        try:
            with zipfile.ZipFile(jar) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile):
            continue
        schemes.update(
            name[len(_SERVICES) :]
            for name in names
            if name.startswith(_SERVICES)
            and not name.endswith("/")
            and "/" not in name[len(_SERVICES) :]
        )
    return frozenset(schemes)
