"""The ``kube_api`` fixture: one real kube-apiserver (with etcd and the Knative CRDs) per session.

The binaries come from ``$SLUICE_KUBE_ASSETS`` when it already holds them, else from
``scripts/kube-test-env``, which builds them from the Go module proxy into a cache directory
(about 4 minutes cold on 2 cores, nothing once cached). That build runs once, right after collection
and only when a selected test uses ``kube_api``, so it does not count against a test's timeout.
A build that fails makes the fixture fail; it never skips.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.built_assets import BuiltAssets, Report
from tests.kube.apiserver import KubeApi, KubeApiError, running_apiserver

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kube-test-env"
BUILD_TIMEOUT = float(os.environ.get("SLUICE_KUBE_BUILD_TIMEOUT", "3600"))
"""Seconds the cold build may take before the fixture gives up."""


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("kube-apiserver", "etcd"))


def _resolve_assets(report: Report) -> Path | str:
    """The directory holding kube-apiserver and etcd, building them if needed; else the reason."""
    preset = os.environ.get("SLUICE_KUBE_ASSETS")
    if preset and _has_binaries(Path(preset)):
        return Path(preset)
    if not os.access(SCRIPT, os.X_OK):
        return f"{SCRIPT} is missing or not executable"
    report(
        "kube_api: preparing kube-apiserver and etcd with scripts/kube-test-env "
        "(a cold build takes about 4 minutes on 2 cores)"
    )
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            result = subprocess.run(
                [str(SCRIPT)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"scripts/kube-test-env did not finish within {BUILD_TIMEOUT:.0f} s"
        except OSError as error:
            return f"scripts/kube-test-env could not run: {error}"
        log.seek(0)
        stderr_tail = "\n".join(log.read().decode(errors="replace").splitlines()[-40:])
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    if result.returncode != 0 or not lines:
        return (
            f"scripts/kube-test-env failed (exit code {result.returncode}); "
            f"last lines of its output:\n{stderr_tail}"
        )
    assets = Path(lines[-1])
    if not _has_binaries(assets):
        return f"scripts/kube-test-env printed {assets}, which lacks kube-apiserver or etcd"
    report(f"kube_api: binaries ready in {time.monotonic() - started:.0f} s")
    return assets


_ASSETS = BuiltAssets("kube_api", _resolve_assets, "no kube-apiserver for the tests")


def pytest_collection_finish(session: pytest.Session) -> None:
    _ASSETS.build_after_collection(session)


@pytest.fixture(scope="session")
def kube_assets(pytestconfig: pytest.Config) -> Path:
    """Directory with the ``kube-apiserver`` and ``etcd`` binaries."""
    return _ASSETS.directory(pytestconfig)


@pytest.fixture(scope="session")
def kube_api(kube_assets: Path) -> Iterator[KubeApi]:
    """A running kube-apiserver for the whole session (Knative CRDs installed, no controllers).

    Tests share it: each should work in its own namespace (see ``kube_namespace``).
    """
    with contextlib.ExitStack() as stack:
        try:
            api = stack.enter_context(running_apiserver(kube_assets))
        except KubeApiError as error:
            pytest.fail(f"kube-apiserver did not start: {error}", pytrace=False)
        yield api


@pytest.fixture
def kube_namespace(kube_api: KubeApi) -> str:
    """A new namespace for one test (left behind: no controller would finish deleting it)."""
    name = f"test-{secrets.token_hex(4)}"
    with kube_api.http_client() as http:
        response = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert response.status_code == 201, response.text
    return name
