"""Loading agents: className imports from the application's python/ folders, and every way it fails."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.plan import PlannedAgent
from sluice.record import Record
from sluice.sdk import AgentContext
from workers.adapters import AdaptedProcessor
from workers.agents import LoadedAgent
from workers.builtin import Identity
from workers.camel import CamelSource
from workers.errors import AgentLoadError
from workers.loading import add_code_dirs, load_agent

Write = Callable[[str], str]


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "python" / "lib").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def code_dirs(app_dir: Path) -> list[Path]:
    return [app_dir / "python", app_dir / "python" / "lib"]


@pytest.fixture
def write(app_dir: Path) -> Write:
    """Writes a module into python/ under a fresh name and returns that name."""

    def write(code: str) -> str:
        name = f"agent_{uuid.uuid4().hex[:12]}"
        (app_dir / "python" / f"{name}.py").write_text(textwrap.dedent(code))
        return name

    return write


def context() -> AgentContext:
    return AgentContext(agent_id="my-agent", tenant="default", application="app")


def processor(agent: LoadedAgent) -> AdaptedProcessor:
    """``agent``, which the test loaded from a processor class: the loader adapted it."""
    assert isinstance(agent, AdaptedProcessor), agent
    return agent


def planned(type_: str = "python-processor", **configuration: Any) -> PlannedAgent:
    return PlannedAgent(
        id="my-agent",
        type=type_,
        component=AGENT_TYPES[type_].component,
        pipeline="pipeline",
        configuration=configuration,
    )


def load_error(agent: PlannedAgent, code_dirs: list[Path]) -> AgentLoadError:
    with pytest.raises(AgentLoadError) as caught:
        load_agent(agent, context(), code_dirs=code_dirs)
    return caught.value


async def test_loads_a_class_from_the_python_folder(write: Write, code_dirs: list[Path]) -> None:
    module = write(
        """
        class Upper:
            def init(self, config):
                self.config = config

            def process(self, record):
                return [{"value": record.value().upper()}]
        """
    )
    configuration: dict[str, Any] = {"className": f"{module}.Upper", "composable": False}
    agent = processor(load_agent(planned(**configuration), context(), code_dirs=code_dirs))
    await agent.init(dict(configuration))
    assert await agent.process(Record("abc")) == [Record("ABC")]
    # LangStream passed the whole configuration, className included.
    user: Any = agent.instance
    assert user.config == configuration


async def test_modules_of_python_lib_and_packages_load(
    app_dir: Path, code_dirs: list[Path]
) -> None:
    package = app_dir / "python" / "lib" / "mypkg_lib_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agents.py").write_text(
        "class Echo:\n    def process(self, record):\n        return [record]\n"
    )
    agent = processor(
        load_agent(planned(className="mypkg_lib_test.agents.Echo"), context(), code_dirs=code_dirs)
    )
    assert await agent.process(Record(1)) == [Record(1)]


async def test_python_function_is_a_processor(write: Write, code_dirs: list[Path]) -> None:
    module = write("class F:\n    def process(self, record):\n        return [(record.value(),)]\n")
    agent = processor(
        load_agent(
            planned("python-function", className=f"{module}.F"), context(), code_dirs=code_dirs
        )
    )
    assert await agent.process(Record("v")) == [Record("v")]


def test_code_dirs_go_to_the_front_of_sys_path_once(code_dirs: list[Path]) -> None:
    before = list(sys.path)
    add_code_dirs(code_dirs)
    add_code_dirs(code_dirs)
    assert sys.path == [str(code_dirs[0]), str(code_dirs[1]), *before]


def test_code_dirs_already_on_sys_path_stay_where_they_are(code_dirs: list[Path]) -> None:
    sys.path.append(str(code_dirs[1]))
    before = list(sys.path)
    add_code_dirs(code_dirs)
    assert sys.path == [str(code_dirs[0]), *before]


def test_relative_code_dirs_are_made_absolute(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app_dir)
    add_code_dirs([Path("python")])
    assert sys.path[0] == str(app_dir / "python")


async def test_identity_returns_the_record_unchanged() -> None:
    agent = load_agent(planned("identity"), context(), code_dirs=[])
    assert isinstance(agent, Identity)
    await agent.init({})
    await agent.start()
    record = Record("v", key="k", headers={"h": "1"})
    [out] = await agent.process(record)
    assert out is record
    await agent.close()


# Errors --------------------------------------------------------------------------------------


def test_missing_class_name(code_dirs: list[Path]) -> None:
    error = load_error(planned(), code_dirs)
    assert str(error) == (
        "agent my-agent: python-processor needs configuration.className ('module.ClassName')"
    )
    assert (error.agent_id, error.class_name) == ("my-agent", None)


@pytest.mark.parametrize("class_name", ["NoModule", "a..B", "a.1B", "a.B ", ".B"])
def test_invalid_class_name(class_name: str, code_dirs: list[Path]) -> None:
    error = load_error(planned(className=class_name), code_dirs)
    assert str(error) == (
        f"agent my-agent (className {class_name}): invalid className {class_name!r}: "
        "expected 'module.ClassName'"
    )


def test_class_name_that_is_not_a_string(code_dirs: list[Path]) -> None:
    error = load_error(planned(className=42), code_dirs)
    assert "className must be a string 'module.ClassName', not int" in str(error)


def test_module_not_found_names_the_folders_searched(code_dirs: list[Path]) -> None:
    error = load_error(planned(className="nowhere_to_be_found.Agent"), code_dirs)
    assert str(error) == (
        "agent my-agent (className nowhere_to_be_found.Agent): module nowhere_to_be_found "
        f"not found (searched {code_dirs[0]}, {code_dirs[1]} and the installed packages)"
    )
    assert error.__cause__ is None


def test_submodule_not_found(app_dir: Path, code_dirs: list[Path]) -> None:
    package = app_dir / "python" / "pkg_without_module"
    package.mkdir()
    (package / "__init__.py").write_text("")
    error = load_error(planned(className="pkg_without_module.missing.Agent"), code_dirs)
    assert "module pkg_without_module.missing not found (searched " in str(error)


def test_class_not_in_module(write: Write, code_dirs: list[Path]) -> None:
    module = write("class Other:\n    pass\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert (
        str(error)
        == f"agent my-agent (className {module}.Agent): module {module} has no class Agent"
    )


def test_import_raising(write: Write, code_dirs: list[Path]) -> None:
    module = write("raise RuntimeError('no API key')\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert str(error) == (
        f"agent my-agent (className {module}.Agent): importing module {module} raised "
        "RuntimeError: no API key"
    )
    assert "Traceback" not in str(error)


def test_a_missing_dependency_names_it_and_the_requirements_file(
    write: Write, code_dirs: list[Path]
) -> None:
    module = write("import a_dependency_not_installed\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert str(error) == (
        f"agent my-agent (className {module}.Agent): module {module} imports "
        "a_dependency_not_installed, which is not installed: add the library that provides "
        f"a_dependency_not_installed to python/requirements.txt ({code_dirs[0] / 'requirements.txt'})"
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_a_missing_library_of_langstreams_bundle_names_the_extra(
    write: Write, code_dirs: list[Path]
) -> None:
    # cassio: in LangStream's bundle (the langstream extra), not in Sluice's dev environment.
    module = write("import cassio.table\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert f"module {module} imports cassio, which is not installed" in str(error)
    assert "LangStream's runtime bundled cassio" in str(error)
    assert "pip install 'sluicegate[langstream]' installs that bundle" in str(error)


def test_with_requirements_it_says_the_environment_follows_the_file(
    write: Write, code_dirs: list[Path], app_dir: Path
) -> None:
    (app_dir / "python" / "requirements.txt").write_text("requests\n")
    module = write("import a_dependency_not_installed\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert str(error).endswith(
        f"to python/requirements.txt ({app_dir / 'python' / 'requirements.txt'}) "
        "(its environment is rebuilt when the file changes)"
    )


def test_a_missing_submodule_of_an_installed_library_asks_for_another_version(
    write: Write, code_dirs: list[Path]
) -> None:
    module = write("from yaml.no_such_submodule import thing\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert (
        f"module {module} imports yaml.no_such_submodule, which the installed yaml does not "
        "have: pin a version of it that has it in python/requirements.txt"
    ) in str(error)


def test_syntax_error(write: Write, code_dirs: list[Path]) -> None:
    module = write("def broken(:\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert f"importing module {module} raised SyntaxError: " in str(error)
    assert f"{module}.py, line 1" in str(error)


def test_constructor_raising(write: Write, code_dirs: list[Path]) -> None:
    module = write(
        """
        class Agent:
            def __init__(self):
                raise ValueError("model file missing")
        """
    )
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert str(error) == (
        f"agent my-agent (className {module}.Agent): Agent() raised ValueError: model file missing"
    )


def test_abstract_langstream_class_fails_in_its_constructor(
    write: Write, code_dirs: list[Path]
) -> None:
    module = write("from langstream import Processor\n\nclass Agent(Processor):\n    pass\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert "Agent() raised TypeError: Can't instantiate abstract class Agent" in str(error)


def test_not_a_class(write: Write, code_dirs: list[Path]) -> None:
    module = write("def Agent():\n    pass\n")
    error = load_error(planned(className=f"{module}.Agent"), code_dirs)
    assert str(error) == (
        f"agent my-agent (className {module}.Agent): {module}.Agent is a function, not a class"
    )


@pytest.mark.parametrize(
    ("type_", "needs"),
    [
        ("python-processor", "process()"),
        ("python-source", "read()"),
        ("python-sink", "write()"),
        ("python-service", "app() or main()"),
    ],
)
def test_a_class_without_its_main_hook(
    type_: str, needs: str, write: Write, code_dirs: list[Path]
) -> None:
    module = write("class Agent:\n    def init(self, config):\n        pass\n")
    error = load_error(planned(type_, className=f"{module}.Agent"), code_dirs)
    component = AGENT_TYPES[type_].component
    assert str(error) == (
        f"agent my-agent (className {module}.Agent): Agent has no {needs} method, "
        f"which a {component} needs"
    )


def test_a_sluice_service_overriding_neither_app_nor_main(
    write: Write, code_dirs: list[Path]
) -> None:
    module = write("from sluice.sdk import Service\n\nclass Agent(Service):\n    pass\n")
    error = load_error(planned("python-service", className=f"{module}.Agent"), code_dirs)
    assert str(error).endswith("Agent has no app() or main() method, which a service needs")


def test_a_sluice_processor_used_as_a_sink(write: Write, code_dirs: list[Path]) -> None:
    module = write("from sluice.sdk import Processor\n\nclass Agent(Processor):\n    pass\n")
    error = load_error(planned("python-sink", className=f"{module}.Agent"), code_dirs)
    assert str(error).endswith("Agent has no write() method, which a sink needs")


async def test_camel_source_loads_and_checks_its_configuration() -> None:
    agent = load_agent(planned("camel-source"), context(), code_dirs=[])
    assert isinstance(agent, CamelSource)
    with pytest.raises(AgentLoadError) as caught:
        await agent.init({})
    assert str(caught.value) == (
        "agent my-agent: camel-source: configuration.component-uri is required "
        "(a Camel URI such as timer:tick)"
    )


def test_a_known_type_sluice_does_not_implement_yet() -> None:
    error = load_error(planned("source"), [])
    assert str(error) == "agent my-agent: agent type source is not implemented by Sluice yet"


def test_an_unknown_type() -> None:
    agent = PlannedAgent(id="my-agent", type="no-such-type", component="processor", pipeline="p")
    error = load_error(agent, [])
    assert str(error) == "agent my-agent: unknown agent type 'no-such-type'"
