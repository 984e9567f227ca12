"""How camel-source runs its JVM: :class:`CamelSettings`, filled once by the worker's entry point.

Every field has a default that works on a developer machine; ``python -m workers`` reads
``JAVA_HOME`` and ``SLUICE_CAMEL_CACHE_DIR`` into it and adds the application's
``configuration.dependencies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sluice.application.model import DependencySpec

__all__ = ["CAMEL_VERSION", "CamelSettings"]

CAMEL_VERSION = "4.22.0"
"""The Camel release whose BOM manages the versions of the Camel jars."""


@dataclass(frozen=True)
class CamelSettings:
    #: The ``java`` executable (a name looked up on PATH, or a path).
    java: str = "java"
    #: A JDK or JRE home; when set and ``java`` is the default, ``<java_home>/bin/java`` is
    #: used. Entry point: ``JAVA_HOME``.
    java_home: Path | None = None
    #: The ``mvn`` executable; only needed while the jar cache lacks the application's set.
    maven: str = "mvn"
    #: Where jar sets are kept, one folder per set. ``None``: ``<user cache dir>/sluice``.
    #: Entry point: ``SLUICE_CAMEL_CACHE_DIR``.
    cache_dir: Path | None = None
    camel_version: str = CAMEL_VERSION
    #: ``configuration.dependencies`` of the application: jars added to the core set.
    dependencies: tuple[DependencySpec, ...] = ()
    #: Seconds Maven may take to download a jar set (first start only).
    download_timeout: float = 600
    #: Options of the JVM; Camel routes of a source need little memory.
    jvm_options: tuple[str, ...] = ("-Xms32m", "-Xmx512m", "-Djava.awt.headless=true")
    #: Seconds the JVM may take from its start until the route runs.
    start_timeout: float = 120
    #: Seconds between SIGTERM and SIGKILL when stopping the JVM.
    stop_grace: float = 10
    #: First and longest wait before restarting a JVM that died.
    restart_backoff: tuple[float, float] = (1.0, 30.0)
    #: A JVM that ran this many seconds restarts after the first wait again.
    stable_after: float = 60

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir.expanduser().absolute()
        return platformdirs.user_cache_path("sluice")
