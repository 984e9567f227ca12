"""Assets some tests need built first (a compiled model server, kube-apiserver and etcd), built
once per session and before the tests that need them.

A cold build takes minutes, longer than a test's timeout, so it must not happen inside a test:
:meth:`BuiltAssets.build_after_collection`, called from a conftest's
``pytest_collection_finish``, builds right after collection when a selected test uses the
fixture that needs the assets, and not at all otherwise. :meth:`BuiltAssets.directory`, called
by that fixture, returns the result (building then when collection did not, as when a test
requests the fixture dynamically); a build that failed fails the test with its reason and never
skips it.

In a conftest::

    MODEL = BuiltAssets("local_llm_assets", build_model, "no local chat model for the tests")

    def pytest_collection_finish(session: pytest.Session) -> None:
        MODEL.build_after_collection(session)

    @pytest.fixture(scope="session")
    def local_llm_assets(pytestconfig: pytest.Config) -> Path:
        return MODEL.directory(pytestconfig)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Report = Callable[[str], None]
"""Writes a progress line to the terminal (nothing when there is no terminal reporter)."""


@dataclass(frozen=True, eq=False)
class BuiltAssets:
    """Assets needed by the tests that use the fixture ``used_by``.

    ``build`` returns their directory, or a string saying why there is none; ``lacking`` begins
    the failure message of a test that needed them then.
    """

    used_by: str
    build: Callable[[Report], Path | str]
    lacking: str
    _key: pytest.StashKey[Path | str] = field(default_factory=pytest.StashKey, repr=False)

    def build_after_collection(self, session: pytest.Session) -> None:
        """Build now if a selected test uses :attr:`used_by` (never for ``--collect-only``)."""
        config = session.config
        if config.option.collectonly or self._key in config.stash:
            return
        if any(self.used_by in getattr(item, "fixturenames", ()) for item in session.items):
            config.stash[self._key] = self._build(config)

    def directory(self, config: pytest.Config) -> Path:
        """The assets' directory; fails the calling test when they could not be built."""
        if self._key not in config.stash:
            config.stash[self._key] = self._build(config)
        assets = config.stash[self._key]
        if isinstance(assets, str):
            pytest.fail(f"{self.lacking}: {assets}", pytrace=False)
        return assets

    def _build(self, config: pytest.Config) -> Path | str:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        return self.build(reporter.write_line if reporter is not None else _quiet)


def _quiet(line: str) -> None:
    """No terminal to report to."""
