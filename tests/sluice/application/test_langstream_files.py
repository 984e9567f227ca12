"""LangStream's own instance, secrets and configuration files load as LangStream loads them, and
every place where LangStream is lenient is a warning with the file and line."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.application.model import ClusterSpec, InstanceSpec
from sluice.errors import InvalidApplication
from tests.sluice.application.conftest import WriteApp

WriteFile = Callable[[str, str], Path]

PIPELINE = """
topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
    creation-mode: create-if-not-exists
pipeline:
  - id: step
    type: identity
    input: questions
    output: answers
    configuration:
      region: "${secrets.search.region}"
      user: "${secrets.search.user}"
      missing: "${secrets.search.nope}"
      embedded: "key=[${secrets.search.nope}]"
"""

# Written like the stock secrets.yaml of LangStream's examples: most values have a default,
# a few read variables nobody set.
SECRETS = """
secrets:
  - id: search
    data:
      user: "${SEARCH_USER:-admin}"
      region: "${SEARCH_REGION}"
      note: "costs $${SEARCH_COST}"
  - id: llm
    data:
      key: "${LLM_KEY}"
"""


def test_unset_environment_variables_are_kept_as_written_with_a_warning(
    write_app: WriteApp, write_file: WriteFile
) -> None:
    secrets = write_file("secrets.yaml", SECRETS)
    app = load_application(
        write_app({"pipeline.yaml": PIPELINE}), secrets=secrets, environ={"LLM_KEY": "k"}
    )
    configuration = app.agents[0].configuration
    assert configuration["region"] == "${SEARCH_REGION}"
    assert configuration["user"] == "admin"
    warning = (
        f'secret "search" ({secrets}:5) data.region: environment variable SEARCH_REGION is not set: '
        "${SEARCH_REGION} is kept as written"
    )
    assert any(w.startswith(warning) for w in app.warnings), app.warnings
    assert not any("LLM_KEY" in w or "SEARCH_COST" in w for w in app.warnings)


def test_an_escaped_reference_is_written_without_its_escape(
    write_app: WriteApp, write_file: WriteFile
) -> None:
    pipeline = PIPELINE.replace("${secrets.search.region}", "${secrets.search.note}")
    app = load_application(
        write_app({"pipeline.yaml": pipeline}), secrets=write_file("secrets.yaml", SECRETS)
    )
    assert app.agents[0].configuration["region"] == "costs ${SEARCH_COST}"


def test_a_missing_key_of_an_existing_secret_resolves_to_nothing_with_a_warning(
    write_app: WriteApp, write_file: WriteFile
) -> None:
    app = load_application(
        write_app({"pipeline.yaml": PIPELINE}), secrets=write_file("secrets.yaml", SECRETS)
    )
    configuration = app.agents[0].configuration
    assert configuration["missing"] is None
    assert configuration["embedded"] == "key=[]"
    missing = [w for w in app.warnings if 'has no key "nope"' in w]
    assert [w.split(":", 2)[:2] for w in missing] == [
        ['agent "step" (pipeline.yaml', "14) configuration.missing"],
        ['agent "step" (pipeline.yaml', "15) configuration.embedded"],
    ]
    assert 'secret "search" has no key "nope": the placeholder resolves to nothing' in missing[0]


def test_a_missing_secret_is_still_an_error(write_app: WriteApp, write_file: WriteFile) -> None:
    pipeline = PIPELINE.replace("secrets.search.region", "secrets.other.region")
    with pytest.raises(InvalidApplication) as caught:
        load_application(
            write_app({"pipeline.yaml": pipeline}), secrets=write_file("secrets.yaml", SECRETS)
        )
    [problem] = caught.value.problems
    assert str(problem).startswith(
        'agent "step" (pipeline.yaml:12) configuration.region: no secret with id "other"'
    )


def test_resources_are_keyed_by_id_then_name(write_app: WriteApp) -> None:
    configuration = """
configuration:
  resources:
    - {type: open-ai-configuration, id: fast, name: OpenAI, configuration: {model: small}}
    - {type: open-ai-configuration, id: smart, name: OpenAI, configuration: {model: large}}
    - {type: datasource, name: db, configuration: {url: one}}
    - {type: datasource, name: db, configuration: {url: two}}
"""
    app_dir = write_app(
        {
            "pipeline.yaml": PIPELINE.split("pipeline:")[0],
            "configuration.yaml": configuration,
        }
    )
    loaded = load_application(app_dir)
    assert [(r.id, r.name, dict(r.configuration)) for r in loaded.resources] == [
        ("fast", "OpenAI", {"model": "small"}),
        ("smart", "OpenAI", {"model": "large"}),
        ("db", "db", {"url": "two"}),
    ]
    [warning] = [w for w in loaded.warnings if "resource" in w]
    assert warning.startswith('resource "db" (configuration.yaml:6): ')
    assert 'resource "db" is declared again (first at configuration.yaml:5)' in warning


def test_google_without_client_id_loads_with_a_warning_naming_the_gateway(
    write_app: WriteApp,
) -> None:
    gateways = """
gateways:
  - id: open
    type: produce
    topic: questions
  - id: signed-in
    type: produce
    topic: questions
    authentication:
      provider: google
      configuration:
        clientId: ""
"""
    app = load_application(
        write_app({"pipeline.yaml": PIPELINE.split("pipeline:")[0], "gateways.yaml": gateways})
    )
    assert [g.id for g in app.gateways] == ["open", "signed-in"]
    [warning] = app.warnings
    assert warning.startswith(
        'gateway "signed-in" (gateways.yaml:10) authentication.configuration: the google '
        "provider has no configuration.clientId"
    )


def test_file_references_are_inlined_relative_to_the_file_that_holds_them(
    write_app: WriteApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "deploy" / "secrets"
    folder.mkdir(parents=True)
    (folder / "account.json").write_text('{"user": "me", "cost": "$5"}\n', encoding="utf-8")
    (folder / "bundle.zip").write_bytes(bytes([0, 1, 2, 255]))
    (folder / "keys").mkdir()
    (folder / "keys" / "token.txt").write_text("t0k3n", encoding="utf-8")
    secrets = folder / "secrets.yaml"
    secrets.write_text(
        "secrets:\n"
        "  - id: search\n"
        "    data:\n"
        '      region: "<file:account.json>"\n'
        '      user: "Bearer <file:${KEYS}/token.txt>"\n'
        '      note: "<file:bundle.zip>"\n',
        encoding="utf-8",
    )
    pipeline = PIPELINE.replace("${secrets.search.nope}", "${secrets.search.note}")
    monkeypatch.chdir(tmp_path)
    app = load_application(
        write_app({"pipeline.yaml": pipeline}),
        secrets=Path("deploy/secrets/secrets.yaml"),
        environ={"KEYS": "keys"},
    )
    configuration = app.agents[0].configuration
    assert configuration["region"] == '{"user": "me", "cost": "$5"}\n'
    assert configuration["user"] == "Bearer t0k3n"
    assert configuration["missing"] == "base64:" + base64.b64encode(bytes([0, 1, 2, 255])).decode()


def test_file_references_in_the_instance(write_app: WriteApp, write_file: WriteFile) -> None:
    instance = write_file(
        "instance.yaml",
        'instance:\n  globals:\n    prompt: "<file:prompt.txt>"\n',
    )
    (instance.parent / "prompt.txt").write_text("You are helpful.", encoding="utf-8")
    pipeline = PIPELINE.replace("${secrets.search.region}", "${globals.prompt}")
    app = load_application(
        write_app({"pipeline.yaml": pipeline}),
        instance=instance,
        secrets=write_file("secrets.yaml", SECRETS),
    )
    assert app.agents[0].configuration["region"] == "You are helpful."


def test_a_missing_referenced_file_names_the_file_and_the_line(
    write_app: WriteApp, write_file: WriteFile
) -> None:
    secrets = write_file(
        "secrets.yaml",
        'secrets:\n  - id: search\n    data:\n      region: "<file:nowhere.json>"\n',
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app({"pipeline.yaml": PIPELINE}), secrets=secrets)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (
        str(secrets),
        4,
        "secrets[0].data.region",
    )
    assert problem.message.startswith(
        f"<file:nowhere.json>: cannot read {secrets.parent / 'nowhere.json'}: "
    )


def test_agents_are_named_by_id_else_name_else_position(write_app: WriteApp) -> None:
    pipeline = """
topics:
  - name: questions
pipeline:
  - name: "The first"
    type: identity
    input: questoins
  - type: identity
    output: nowhere
"""
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app({"pipeline.yaml": pipeline}))
    text = [str(p) for p in caught.value.problems]
    assert text[0].startswith('agent "The first" (pipeline.yaml:6) input: topic "questoins"')
    assert text[1].startswith('agent #2 (pipeline.yaml:8) output: topic "nowhere"')
    assert caught.value.problems[0].path == "pipeline[0].input"


def test_an_unset_variable_in_the_instance_resolves_to_nothing_with_warnings(
    write_app: WriteApp, write_file: WriteFile
) -> None:
    # LangStream's CLI keeps ${KAFKA_HOST}; its placeholder resolver then reads the unknown
    # name as null.
    instance = write_file(
        "instance.yaml",
        "instance:\n"
        "  streamingCluster:\n"
        "    type: kafka\n"
        "    configuration:\n"
        '      admin: {bootstrap.servers: "${KAFKA_HOST}", client.id: "app-${KAFKA_HOST}"}\n',
    )
    app = load_application(
        write_app({"pipeline.yaml": PIPELINE.split("pipeline:")[0]}), instance=instance
    )
    assert app.instance.bootstrap_servers is None
    assert app.instance.kafka_admin["client.id"] == "app-"
    where = f"{instance}:5 instance.streamingCluster.configuration.admin"
    assert [w.split(": ", 1)[0] for w in app.warnings] == [
        f"{where}.bootstrap.servers",
        f"{where}.client.id",
        f"{where}.bootstrap.servers",
        f"{where}.client.id",
    ]
    assert "environment variable KAFKA_HOST is not set" in app.warnings[0]
    assert "${KAFKA_HOST} names nothing" in app.warnings[2]


def test_a_bare_unknown_name_resolves_to_nothing_but_an_unknown_root_is_an_error(
    write_app: WriteApp,
) -> None:
    pipeline = PIPELINE.split("configuration:")[0] + 'configuration: {a: "${nothing}"}\n'
    app = load_application(write_app({"pipeline.yaml": pipeline}))
    assert app.agents[0].configuration == {"a": None}
    with pytest.raises(InvalidApplication, match="unknown placeholder root 'topics'"):
        load_application(write_app({"pipeline.yaml": pipeline.replace("nothing", "topics.q")}))


def test_kafka_client_options_are_the_admin_properties_without_bootstrap_servers() -> None:
    instance = InstanceSpec(
        streaming_cluster=ClusterSpec(
            "kafka",
            {
                "admin": {
                    "bootstrap.servers": "kafka:9092",
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "PLAIN",
                }
            },
        )
    )
    assert instance.bootstrap_servers == "kafka:9092"
    assert instance.kafka_client_options == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
    }
    assert InstanceSpec().kafka_client_options == {}
