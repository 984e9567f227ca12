"""The Camel jars for the camel-source tests, resolved once before the first test runs.

The sets the tests use (the core set, and the core set plus camel-quartz) are resolved with Maven
into the user cache right after collection, when a selected test uses ``camel_jars``, so a cold
download does not count against a test's timeout; later sessions find them in the cache.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from sluice.application.model import DependencySpec
from workers.camel.jars import camel_classpath
from workers.camel.settings import CAMEL_VERSION, CamelSettings
from workers.errors import CamelSourceError

QUARTZ_URL = (
    "https://repo1.maven.org/maven2/org/apache/camel/camel-quartz/"
    f"{CAMEL_VERSION}/camel-quartz-{CAMEL_VERSION}.jar"
)
"""A dependency written as LangStream applications do: the URL of a jar in a Maven repository."""

JAR_SETS: tuple[tuple[DependencySpec, ...], ...] = ((), (DependencySpec(url=QUARTZ_URL),))

_RESOLVED = pytest.StashKey[str | None]()
"""After collection: None once the jar sets are in the cache, else why they are not."""


def _resolve(config: pytest.Config) -> str | None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    started = time.monotonic()
    for dependencies in JAR_SETS:
        settings = CamelSettings(dependencies=dependencies)
        try:
            asyncio.run(camel_classpath(settings, progress=reporter and reporter.write_line))
        except CamelSourceError as error:
            return str(error)
    if reporter is not None and time.monotonic() - started > 1:
        reporter.write_line(f"camel_jars: ready in {time.monotonic() - started:.0f} s")
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or _RESOLVED in config.stash:
        return
    if any("camel_jars" in getattr(item, "fixturenames", ()) for item in session.items):
        config.stash[_RESOLVED] = _resolve(config)


@pytest.fixture(scope="session")
def camel_jars(pytestconfig: pytest.Config) -> None:
    """The jar sets of these tests are in the user cache (workers find them there)."""
    if _RESOLVED not in pytestconfig.stash:
        pytestconfig.stash[_RESOLVED] = _resolve(pytestconfig)
    problem = pytestconfig.stash[_RESOLVED]
    if problem is not None:
        pytest.fail(f"the Camel jars could not be resolved: {problem}", pytrace=False)
