"""Shared fixtures: the Kafka broker every Kafka-touching test uses, a stand-in for Google's
JWKS endpoint and a real local chat model (:mod:`tests.fakes.local_llm`); and the markers
saying what a test needs beyond Python (``make unit`` deselects them)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.auth.jwks_server import JwksServer, jwks_server
from tests.built_assets import BuiltAssets, Report
from tests.cassandra.server import CASSANDRA_JARS, cassandra_jars_dir, cassandra_server
from tests.fakes.local_llm import LocalLlm, LocalLlmError, prepare, running_server
from tests.kafka_cluster import kafka_cluster

__all__ = ["cassandra_jars_dir", "cassandra_server", "kafka_cluster"]
"""Fixtures defined elsewhere and offered to every test."""

NEEDS_BY_FIXTURE = {
    "kafka_bootstrap": "kafka",
    "kafka_cluster": "kafka",
    "camel_jars": "java",
    "kube_assets": "kube",
    "local_llm_assets": "llm",
    "cassandra_jars_dir": "java",
}
"""A test that uses one of these fixtures, even through another fixture, needs what it starts:
the broker is a JVM, the Camel and Cassandra jars come from Maven, kube-apiserver is built with Go, the local
model's server is compiled from C++ (llama.cpp)."""

NEEDS_BY_PATH = {
    "kube": "kube",
    "examples/test_chat_page.py": "browser",
}
"""Folders and modules (relative to tests/) whose every test needs one: the kube folder is about
the real API server; the chat page is driven in Chromium. Modules that mix kinds mark their tests
themselves (``java`` where a test runs ``java`` or ``sluice run``'s own broker)."""

_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needs = {
            NEEDS_BY_FIXTURE[f] for f in getattr(item, "fixturenames", ()) if f in NEEDS_BY_FIXTURE
        }
        relative = item.path.relative_to(_TESTS).as_posix()
        needs.update(
            need
            for prefix, need in NEEDS_BY_PATH.items()
            if relative == prefix or relative.startswith(f"{prefix}/")
        )
        for need in sorted(needs):
            item.add_marker(need)


@pytest.fixture(scope="session")
async def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Bootstrap servers of a real broker: ``SLUICE_TEST_KAFKA`` or a local one for the session."""
    external = os.environ.get("SLUICE_TEST_KAFKA")
    if external:
        yield external
        return
    from sluice.kafka.local import LocalKafka, LocalKafkaSettings

    settings = LocalKafkaSettings(port=0, data_dir=tmp_path_factory.mktemp("kafka"))
    async with LocalKafka(settings) as kafka:
        yield kafka.bootstrap_servers


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    """A local JWKS endpoint publishing one RSA key made for the test (kid ``k1``)."""
    from tests.auth.google_tokens import new_key

    async with jwks_server() as server:
        server.keys.append(new_key("k1"))
        yield server


def _prepare_llm(report: Report) -> Path | str:
    try:
        return prepare(report=report)
    except LocalLlmError as error:
        return str(error)


_LLM_ASSETS = BuiltAssets("local_llm_assets", _prepare_llm, "no local chat model for the tests")
"""The llama.cpp server and the model, built right after collection (not inside a test's
timeout), only when a selected test uses them."""


def pytest_collection_finish(session: pytest.Session) -> None:
    _LLM_ASSETS.build_after_collection(session)
    CASSANDRA_JARS.build_after_collection(session)


@pytest.fixture(scope="session")
def local_llm_assets(pytestconfig: pytest.Config) -> Path:
    """Directory of the built llama-cpp-python server and the Gemma 3 270M GGUF."""
    return _LLM_ASSETS.directory(pytestconfig)


@pytest.fixture
def local_llm(local_llm_assets: Path) -> Iterator[LocalLlm]:
    """A real OpenAI-compatible chat model on loopback for one test (its ``base_url`` is an
    ``open-ai-configuration`` resource's ``url``; any access key is accepted).

    A fresh server per test (about a second to start): the server samples from one random
    generator with a fixed seed, advanced by every request it answers, so on a shared server
    a test's answers (at the default temperature) depended on which tests ran before it; one
    request's answer made the next chat answer a lone newline. Fresh, each test gets the same
    answers in any order and selection."""
    try:
        with running_server(local_llm_assets) as server:
            yield server
    except LocalLlmError as error:
        pytest.fail(f"the local chat model did not start: {error}", pytrace=False)
