"""Loading the agents of an executor: user classes by ``className``, or built-in agents.

``python-processor`` (and its alias ``python-function``), ``python-source``, ``python-sink`` and
``python-service`` import ``configuration.className`` (``module.Class``) with the application's
``python/`` and ``python/lib`` folders at the front of ``sys.path``, as LangStream did, make an
instance with no arguments and adapt it to its component's protocol (``workers.adapters``).
``camel-source`` runs a Camel route in a JVM child (``workers.camel``).
Every failure is an :class:`AgentLoadError` naming the agent, the class and what went wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.plan import PlannedAgent
from sluice.sdk import AgentContext
from workers.adapters import adapt
from workers.agents import LoadedAgent, UsesContext
from workers.builtin import BUILTIN_AGENTS
from workers.camel import CamelSettings, CamelSource
from workers.errors import AgentLoadError

PYTHON_AGENT_TYPES = frozenset(
    {"python-processor", "python-function", "python-source", "python-sink", "python-service"}
)

_MISSING = object()


def load_agent(
    agent: PlannedAgent,
    context: AgentContext,
    *,
    code_dirs: Sequence[Path],
    camel: CamelSettings | None = None,
) -> LoadedAgent:
    """The agent, ready for ``init(config)``; raises :class:`AgentLoadError` if it cannot be.

    ``code_dirs`` are the folders user code is imported from (the application's ``python/``
    and ``python/lib``); they go to the front of ``sys.path`` once. ``camel`` says how
    ``camel-source`` agents run their JVM (defaults if None).
    """
    if agent.type in PYTHON_AGENT_TYPES:
        class_name = _class_name(agent)
        instance = instantiate(agent.id, class_name, code_dirs)
        return adapt(instance, agent.component, context, agent_id=agent.id, class_name=class_name)
    builtin = BUILTIN_AGENTS.get(agent.type)
    if builtin is not None:
        loaded = builtin()
        if isinstance(loaded, UsesContext):
            loaded.use_context(context)
        return loaded
    if agent.type == "camel-source":
        return CamelSource(agent.id, camel or CamelSettings())
    if agent.type in AGENT_TYPES:
        raise AgentLoadError(
            agent.id, None, f"agent type {agent.type} is not implemented by Sluice yet"
        )
    raise AgentLoadError(agent.id, None, f"unknown agent type {agent.type!r}")


def add_code_dirs(code_dirs: Sequence[Path]) -> None:
    """Put ``code_dirs`` (absolute, in order) at the front of ``sys.path``, unless already there."""
    entries = dict.fromkeys(str(Path(d).absolute()) for d in code_dirs)
    sys.path[0:0] = [entry for entry in entries if entry not in sys.path]


def instantiate(agent_id: str, class_name: str, code_dirs: Sequence[Path]) -> object:
    """Import ``module.Class`` (with ``code_dirs`` on ``sys.path``) and call ``Class()``."""
    module_name, _, name = class_name.rpartition(".")
    add_code_dirs(code_dirs)
    # Folders may have changed since the import system last listed them (new uploads, tests).
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and _is_prefix(error.name, module_name):
            searched = ", ".join(str(Path(d).absolute()) for d in code_dirs) or "no folder"
            raise AgentLoadError(
                agent_id,
                class_name,
                f"module {module_name} not found (searched {searched} and the installed packages)",
            ) from None
        if error.name is not None:
            raise AgentLoadError(
                agent_id, class_name, _missing_library(module_name, error.name, code_dirs)
            ) from error
        raise AgentLoadError(
            agent_id, class_name, f"importing module {module_name} raised {_describe(error)}"
        ) from error
    except Exception as error:
        raise AgentLoadError(
            agent_id, class_name, f"importing module {module_name} raised {_describe(error)}"
        ) from error
    cls = getattr(module, name, _MISSING)
    if cls is _MISSING:
        raise AgentLoadError(agent_id, class_name, f"module {module_name} has no class {name}")
    if not inspect.isclass(cls):
        raise AgentLoadError(
            agent_id, class_name, f"{class_name} is a {type(cls).__name__}, not a class"
        )
    try:
        instance: object = cls()
    except Exception as error:
        raise AgentLoadError(agent_id, class_name, f"{name}() raised {_describe(error)}") from error
    return instance


def _class_name(agent: PlannedAgent) -> str:
    value = agent.configuration.get("className")
    if value is None or value == "":
        raise AgentLoadError(
            agent.id, None, f"{agent.type} needs configuration.className ('module.ClassName')"
        )
    if not isinstance(value, str):
        raise AgentLoadError(
            agent.id,
            str(value),
            f"className must be a string 'module.ClassName', not {type(value).__name__}",
        )
    parts = value.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise AgentLoadError(
            agent.id, value, f"invalid className {value!r}: expected 'module.ClassName'"
        )
    return value


def _missing_library(module_name: str, missing: str, code_dirs: Sequence[Path]) -> str:
    """What to do when user code imports a library that is not installed."""
    top = missing.partition(".")[0]
    requirements = Path(code_dirs[0]).absolute() / "requirements.txt" if code_dirs else None
    where = (
        f"python/requirements.txt ({requirements})" if requirements else "python/requirements.txt"
    )
    if top != missing and _importable(top):
        message = (
            f"module {module_name} imports {missing}, which the installed {top} does not have: "
            f"pin a version of it that has it in {where}"
        )
    else:
        message = (
            f"module {module_name} imports {missing}, which is not installed: add the library "
            f"that provides {top} to {where}"
        )
    if requirements is not None and requirements.is_file():
        message += " (its environment is rebuilt when the file changes)"
    if top in LANGSTREAM_BUNDLE:
        message += (
            f"; LangStream's runtime bundled {top}: for applications without "
            "python/requirements.txt, pip install 'sluicegate[langstream]' installs that bundle"
        )
    return message


LANGSTREAM_BUNDLE = frozenset(
    {
        "openai",
        "langchain",
        "langchain_community",
        "langchain_openai",
        "langchain_core",
        "langserve",
        "fastapi",
        "uvicorn",
        "boto3",
        "llama_index",
        "cassio",
        "unstructured",
    }
)
"""Top-level modules of the libraries LangStream's runtime bundled (the ``langstream`` extra)."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _is_prefix(missing: str, module_name: str) -> bool:
    """Whether the missing module is ``module_name`` itself or one of its parent packages."""
    return missing == module_name or module_name.startswith(missing + ".")


def _describe(error: BaseException) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
