"""``cassandra`` and ``astra`` datasources checked at load: Sluice runs them with contact points
or a secure bundle; an Astra datasource naming only its database (LangStream downloaded the
bundle through Astra's DevOps API) makes the agent one Sluice cannot run, with the reason."""

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


@pytest.mark.parametrize("datasource", ["Local", "Bundle"])
def test_runs_with_contact_points_or_a_bundle(write_app: WriteApp, datasource: str) -> None:
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


def test_astra_by_database_name_is_not_run(write_app: WriteApp) -> None:
    app = load_application(
        write_app(
            {
                "configuration.yaml": CONFIGURATION,
                "pipeline.yaml": SINK.replace("{datasource}", "ByName"),
            }
        )
    )
    [problem] = app.unsupported
    assert 'datasource "ByName" names neither contact-points nor secureBundle' in str(problem)
    assert "DevOps API" in str(problem)
