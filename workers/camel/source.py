"""The ``camel-source`` agent: a real Apache Camel route in a JVM child, as a pipeline source.

How it works, and why this way:

- The worker generates a YAML-DSL route (:mod:`workers.camel.route`) and runs it with
  camel-main 4.x in a JVM child (:mod:`workers.camel.process`). The jars come from Maven into
  a cache (:mod:`workers.camel.jars`): the core set plus the application's
  ``configuration.yaml`` dependencies.
- The route hands each exchange to the worker over HTTP on loopback
  (:mod:`workers.camel.bridge`): it posts the message as JSON and waits, in the exchange, for
  the answer, which comes only once Kafka acknowledged the record. So an exchange completes, and
  the component commits its input (moves the file, acknowledges the message), only when the
  record is safe: a worker or JVM killed at any moment loses nothing, at worst an input comes
  again (at-least-once). A full buffer delays answers rather than failing exchanges.
- The bridge is pure Camel (the ``http`` component and Jackson): no Java code of ours to compile
  or ship, so any JRE with the jars runs it, including the Knative image. The price is a local
  HTTP round trip per exchange, small next to the Kafka acknowledgement each one waits for.

Configuration (LangStream's): ``component-uri``, ``component-options``, ``key-header``,
``max-buffered-records`` (:mod:`workers.camel.agent_config`); the record mapping is in
:mod:`workers.camel.exchange`. The JVM's output goes to the worker's log.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sluice.jvm import find_java
from sluice.record import Record
from workers.camel.agent_config import CamelSourceConfig, parse_config
from workers.camel.bridge import Bridge
from workers.camel.jars import camel_classpath, component_schemes
from workers.camel.process import CamelJvm
from workers.camel.route import main_properties, route_yaml
from workers.camel.settings import CamelSettings
from workers.errors import AgentLoadError, CamelSourceError

__all__ = ["CamelSource", "unknown_scheme"]

log = logging.getLogger("sluice.camel")

_READ_WAIT = 1.0
_LOG_OPTIONS = (
    "-Dorg.slf4j.simpleLogger.logFile=System.out",
    "-Dorg.slf4j.simpleLogger.showThreadName=false",
    "-Dorg.slf4j.simpleLogger.showShortLogName=true",
    "-Dorg.slf4j.simpleLogger.levelInBrackets=true",
)


class CamelSource:
    """The runtime's :class:`~workers.agents.LoadedSource` for a ``camel-source`` agent."""

    def __init__(self, agent_id: str, settings: CamelSettings) -> None:
        self._agent_id = agent_id
        self._settings = settings
        self._config: CamelSourceConfig | None = None
        self._bridge: Bridge | None = None
        self._jvm: CamelJvm | None = None
        self._workdir: Path | None = None

    @property
    def jvm(self) -> CamelJvm | None:
        return self._jvm

    async def init(self, config: dict[str, Any]) -> None:
        self._config = parse_config(self._agent_id, config)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.close()  # the worker closes only the agents that started
            raise

    async def _start(self) -> None:
        config = self._config
        assert config is not None, "init() comes first"
        try:
            java = await find_java(
                self._settings.java, self._settings.java_home, error=CamelSourceError
            )
            jars = await camel_classpath(self._settings, progress=self._progress)
        except CamelSourceError as error:
            raise self._error(str(error)) from None
        problem = unknown_scheme(config.scheme, component_schemes(jars), self._settings)
        if problem is not None:
            raise self._error(problem)
        bridge = Bridge(
            key_header=config.key_header,
            origin=config.component_uri,
            max_buffered=config.max_buffered_records,
        )
        await bridge.start()
        self._bridge = bridge
        workdir = Path(tempfile.mkdtemp(prefix=f"sluice-camel-{self._agent_id}-"))
        self._workdir = workdir
        route = workdir / "route.camel.yaml"
        route.write_text(route_yaml(config.endpoint_uri, bridge.port), encoding="utf-8")
        properties = workdir / "application.properties"
        properties.write_text(main_properties(route, f"sluice-{self._agent_id}"))
        classpath = ":".join(str(jar) for jar in jars)
        argv = [
            java,
            *self._settings.jvm_options,
            *_LOG_OPTIONS,
            "-cp",
            classpath,
            "org.apache.camel.main.Main",
            "-pl",
            f"file:{properties}",
        ]
        self._jvm = CamelJvm(
            argv,
            agent_id=self._agent_id,
            started=bridge.started,
            settings=self._settings,
            cwd=workdir,
        )
        try:
            await self._jvm.start()
        except CamelSourceError as error:
            raise self._error(f"{error}") from None
        log.info("[%s] consuming from %s", self._agent_id, config.component_uri)

    async def read(self) -> list[Record]:
        assert self._bridge is not None and self._config is not None
        return await self._bridge.take(self._config.max_buffered_records, _READ_WAIT)

    async def commit(self, records: list[Record]) -> None:
        assert self._bridge is not None
        self._bridge.ack(records)

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        assert self._bridge is not None
        self._bridge.fail(record, f"{type(error).__name__}: {error}")

    async def close(self) -> None:
        # Answer the open exchanges first: Camel's graceful shutdown waits for them.
        if self._bridge is not None:
            self._bridge.close("the worker is stopping")
        if self._jvm is not None:
            await self._jvm.stop()
        if self._bridge is not None:
            await self._bridge.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _progress(self, message: str) -> None:
        log.info("[%s] %s", self._agent_id, message)

    def _error(self, reason: str) -> AgentLoadError:
        return AgentLoadError(self._agent_id, None, f"camel-source: {reason}")


def unknown_scheme(scheme: str, known: frozenset[str], settings: CamelSettings) -> str | None:
    """None if a jar provides ``scheme``, else a message saying how to add its dependency."""
    if scheme in known:
        return None
    listed = ", ".join(sorted(known)) or "none"
    return (
        f"no Camel component for the scheme {scheme!r} of component-uri (components available: "
        f"{listed}). Add the component's jar to configuration.yaml, e.g.\n"
        "  configuration:\n"
        "    dependencies:\n"
        f'      - "org.apache.camel:camel-{scheme}"\n'
        f"(a Camel artifact without a version gets Camel {settings.camel_version}'s; the "
        "component documentation names its artifact)"
    )
