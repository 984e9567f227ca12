"""The datasource agents' ``datasource`` checked at load: a missing resource or one of another
type is an error; a service or JDBC driver Sluice does not run makes the agent unsupported."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from tests.sluice.application.conftest import WriteApp

CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "PG"
      configuration: {service: "jdbc", driverClass: "org.postgresql.Driver", url: "jdbc:postgresql://h/db"}
    - type: "datasource"
      name: "Herd"
      configuration: {service: "jdbc", driverClass: "herddb.jdbc.Driver", url: "jdbc:herddb:server:h:7000"}
    - type: "datasource"
      name: "HerdOnPG"
      configuration: {service: "jdbc", driverClass: "herddb.jdbc.Driver", url: "jdbc:postgresql://h/db"}
    - type: "vector-database"
      name: "Pine"
      configuration: {service: "pinecone", api-key: "k", environment: "e", project-name: "p", index-name: "i"}
    - type: "vector-database"
      name: "Couch"
      configuration: {service: "couchbase"}
    - type: "open-ai-configuration"
      name: "AI"
      configuration: {access-key: "k"}
"""


def pipeline(agent_type: str, datasource: str) -> str:
    return f"""
topics:
  - name: "in"
pipeline:
  - name: "db"
    type: "{agent_type}"
    input: "in"
    configuration:
      datasource: "{datasource}"
      query: "SELECT 1"
      output-field: "value.x"
"""


@pytest.mark.parametrize(
    ("agent_type", "datasource"),
    # HerdOnPG: the URL chooses the database, whatever driverClass names.
    [("query", "PG"), ("query", "HerdOnPG"), ("query-vector-db", "Pine")],
)
def test_a_datasource_sluice_runs(write_app: WriteApp, agent_type: str, datasource: str) -> None:
    app = load_application(
        write_app(
            {"configuration.yaml": CONFIGURATION, "pipeline.yaml": pipeline(agent_type, datasource)}
        )
    )
    assert app.unsupported == ()


@pytest.mark.parametrize(
    ("agent_type", "datasource", "message"),
    [
        (
            "query",
            "Herd",
            'datasource "Herd" uses the JDBC driver herddb.jdbc.Driver, which Sluice',
        ),
        (
            "query-vector-db",
            "Couch",
            'datasource "Couch" has service "couchbase", which Sluice does not support yet',
        ),
    ],
)
def test_what_sluice_does_not_run_yet(
    write_app: WriteApp, agent_type: str, datasource: str, message: str
) -> None:
    app = load_application(
        write_app(
            {"configuration.yaml": CONFIGURATION, "pipeline.yaml": pipeline(agent_type, datasource)}
        )
    )
    [problem] = app.unsupported
    assert message in str(problem)
    assert str(problem).startswith('agent "db" (pipeline.yaml:8) configuration.datasource: ')


@pytest.mark.parametrize(
    ("agent_type", "datasource", "message"),
    [
        (
            "query",
            "PGG",
            'datasource "PGG" is not a resource of the application (resources: AI, Couch, Herd, HerdOnPG, PG, Pine); did you mean "PG"?',
        ),
        (
            "query",
            "Pine",
            'datasource "Pine" is a vector-database resource; query takes a datasource',
        ),
        (
            "vector-db-sink",
            "AI",
            "is a open-ai-configuration resource; vector-db-sink takes a datasource or a vector-database",
        ),
    ],
)
def test_errors(write_app: WriteApp, agent_type: str, datasource: str, message: str) -> None:
    text = pipeline(agent_type, datasource)
    if agent_type == "vector-db-sink":
        text = text.replace(
            '      query: "SELECT 1"\n      output-field: "value.x"\n', '      table-name: "t"\n'
        )
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app({"configuration.yaml": CONFIGURATION, "pipeline.yaml": text}))
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems


def sink(datasource: str, keys: str) -> str:
    return f"""
topics:
  - name: "in"
pipeline:
  - name: "write"
    type: "vector-db-sink"
    input: "in"
    configuration:
      datasource: "{datasource}"
{keys}"""


PINECONE_SINK = """      vector.id: "value.id"
      vector.vector: "value.embeddings"
      vector.namespace: ""
      vector.metadata.genre: "value.genre"
      vector.metadata.text: "value.text"
"""


def test_vector_metadata_keys_of_a_pinecone_sink_are_known(write_app: WriteApp) -> None:
    """LangStream's pinecone sink reads vector.metadata.<name> keys: validation is silent on
    them, and a misspelled other key still warns."""
    app = load_application(
        write_app(
            {"configuration.yaml": CONFIGURATION, "pipeline.yaml": sink("Pine", PINECONE_SINK)}
        )
    )
    assert app.warnings == () and app.unsupported == ()
    typo = PINECONE_SINK + '      vector.vectr: "value.embeddings"\n'
    app = load_application(
        write_app({"configuration.yaml": CONFIGURATION, "pipeline.yaml": sink("Pine", typo)})
    )
    [warning] = app.warnings
    assert 'unknown key "vector.vectr" of vector-db-sink is ignored; did you mean' in warning
    assert '"vector.vector"' in warning


def test_vector_metadata_keys_elsewhere(write_app: WriteApp) -> None:
    """On another service the keys are ignored (a warning naming it); the bare prefix is an
    unknown key; a value that is not an expression is an error."""
    keys = '      table-name: "t"\n      vector.metadata.genre: "value.genre"\n'
    app = load_application(
        write_app({"configuration.yaml": CONFIGURATION, "pipeline.yaml": sink("PG", keys)})
    )
    [warning] = app.warnings
    assert (
        '"vector.metadata.genre" is read only on a pinecone datasource; datasource "PG" is '
        "jdbc: ignored"
    ) in warning
    bare = PINECONE_SINK + '      vector.metadata.: "value.x"\n'
    app = load_application(
        write_app({"configuration.yaml": CONFIGURATION, "pipeline.yaml": sink("Pine", bare)})
    )
    [warning] = app.warnings
    assert 'unknown key "vector.metadata." of vector-db-sink is ignored' in warning
    wrong = PINECONE_SINK + '      vector.metadata.bad: "value.x +"\n'
    with pytest.raises(InvalidApplication) as caught:
        load_application(
            write_app({"configuration.yaml": CONFIGURATION, "pipeline.yaml": sink("Pine", wrong)})
        )
    assert "configuration.vector.metadata.bad" in str(caught.value)
    assert "of the expression 'value.x +'" in str(caught.value)
