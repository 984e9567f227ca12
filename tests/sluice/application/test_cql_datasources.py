"""``cassandra`` and ``astra`` datasources checked at load: Sluice runs them with contact points,
a secure bundle, or an Astra database named with its token (the bundle comes from Astra's DevOps
API); one naming no database (or a database without a token) makes the agent one Sluice cannot
run, with the reason."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from tests.sluice.application.conftest import WriteApp

CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "Local"
      configuration: {service: "cassandra", contact-points: "h1,h2", loadBalancing-localDc: "dc1"}
    - type: "vector-database"
      name: "Bundle"
      configuration: {service: "astra", secureBundle: "UEsDBA==", token: "AstraCS:x"}
    - type: "vector-database"
      name: "ByName"
      configuration: {service: "astra", clientId: "token", secret: "s", token: "t", database: "db"}
    - type: "vector-database"
      name: "ById"
      configuration: {service: "astra", token: "t", database-id: "0c1d", environment: "DEV"}
    - type: "vector-database"
      name: "NoToken"
      configuration: {service: "astra", clientId: "c", secret: "s", database: "db"}
"""

SINK = """
topics:
  - name: "in"
pipeline:
  - name: "write"
    type: "vector-db-sink"
    input: "in"
    configuration:
      datasource: "{datasource}"
      table-name: "products"
      keyspace: "langstream"
      mapping: "id=value.id,description=value.description,name=value.name"
"""


@pytest.mark.parametrize("datasource", ["Local", "Bundle", "ByName", "ById"])
def test_runs_with_contact_points_a_bundle_or_a_database(
    write_app: WriteApp, datasource: str
) -> None:
    app = load_application(
        write_app(
            {
                "configuration.yaml": CONFIGURATION,
                "pipeline.yaml": SINK.replace("{datasource}", datasource),
            }
        )
    )
    assert app.unsupported == ()
    assert app.warnings == ()  # keyspace and mapping are keys of vector-db-sink


def test_astra_database_without_token_is_not_run(write_app: WriteApp) -> None:
    app = load_application(
        write_app(
            {
                "configuration.yaml": CONFIGURATION,
                "pipeline.yaml": SINK.replace("{datasource}", "NoToken"),
            }
        )
    )
    [problem] = app.unsupported
    assert 'datasource "NoToken" names no database' in str(problem)
    assert "database (or database-id) and token" in str(problem)
