"""The datasources the datasource agents name, checked when the application loads.

``query``, ``query-vector-db`` and ``vector-db-sink`` name a resource with ``datasource``: it
must be a resource of ``configuration.yaml`` (an error otherwise, with the names there), of a
type the agent takes (``query``: ``datasource``; the other two also ``vector-database``). A
datasource of a service Sluice does not run yet, or a ``jdbc`` one with another driver than
PostgreSQL's and a URL that is not ``jdbc:postgresql:`` (the URL chooses the database, as JDBC's
``DriverManager`` did), makes the agent one Sluice cannot run: the application still
loads and plans (it is valid LangStream), and ``sluice validate`` and ``sluice run`` refuse it
with the agent, the datasource and what is not supported, as they refuse an agent type not run
yet. A ``vector-db-sink``'s ``vector.metadata.<name>`` keys (known to its key table) get a
warning when the datasource is not pinecone's, the only service whose writer reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sluice.application.builtin_schemas.datasources import METADATA
from sluice.application.model import ResourceSpec
from sluice.application.pipelines import ParsedPipeline
from sluice.application.reader import Node, did_you_mean
from sluice.errors import Problem

__all__ = [
    "DATASOURCE_AGENTS",
    "POSTGRES_DRIVER",
    "SUPPORTED_SERVICES",
    "check_datasources",
    "unsupported_datasource",
]

POSTGRES_DRIVER = "org.postgresql.Driver"
"""The one JDBC driver whose URLs and properties Sluice maps (onto PostgreSQL's libpq)."""

SUPPORTED_SERVICES = (
    "jdbc",
    "pinecone",
    "opensearch",
    "solr",
    "astra-vector-db",
    "cassandra",
    "astra",
    "milvus",
)
"""The datasource services Sluice's agents run on."""

METADATA_SERVICE = "pinecone"
"""The service whose ``vector-db-sink`` reads ``vector.metadata.<name>`` keys."""

DATASOURCE_AGENTS: Mapping[str, tuple[str, ...]] = {
    "query": ("datasource",),
    "query-vector-db": ("datasource", "vector-database"),
    "vector-db-sink": ("datasource", "vector-database"),
}
"""Agent type -> the resource types its ``datasource`` may name."""


def unsupported_datasource(configuration: Mapping[str, Any]) -> str | None:
    """Why Sluice cannot run on a datasource of this configuration, or None when it can."""
    service = str(configuration.get("service") or "")
    if service not in SUPPORTED_SERVICES:
        return (
            f'has service "{service or "(none)"}", which Sluice does not support yet (it '
            f"supports {', '.join(SUPPORTED_SERVICES)})"
        )
    if (
        service in ("cassandra", "astra")
        and not configuration.get("contact-points")
        and not configuration.get("secureBundle")
        and not (
            (configuration.get("database") or configuration.get("database-id"))
            and configuration.get("token")
        )
    ):
        return (
            "names no database: give contact-points, or for Astra secureBundle (base64), or "
            "database (or database-id) and token to download the bundle from Astra's DevOps API"
        )
    driver = str(configuration.get("driverClass") or "").strip()
    url = str(configuration.get("url") or "").strip()
    # The URL chooses the database (as JDBC's DriverManager did): a jdbc:postgresql: URL runs
    # on PostgreSQL whatever driverClass names.
    if driver and driver != POSTGRES_DRIVER and not url.startswith("jdbc:postgresql:"):
        return (
            f"uses the JDBC driver {driver}, which Sluice does not support: it connects to "
            f"PostgreSQL only (a jdbc:postgresql: URL, with driverClass {POSTGRES_DRIVER} or any)"
        )
    return None


def check_datasources(
    pipelines: Iterable[ParsedPipeline], resources: Iterable[ResourceSpec]
) -> list[Problem]:
    """Report datasources that are missing or of the wrong type as errors; return the agents
    whose datasource Sluice cannot run yet (see the module's documentation)."""
    by_id = {resource.id: resource for resource in resources}
    unsupported: list[Problem] = []
    for pipeline in pipelines:
        for parsed in pipeline.agents:
            accepted = DATASOURCE_AGENTS.get(parsed.spec.type)
            name = parsed.spec.configuration.get("datasource")
            if accepted is None or not isinstance(name, str) or not name:
                continue
            node = parsed.node.child("configuration")
            resource = by_id.get(name)
            if resource is None:
                known = ", ".join(sorted(by_id)) or "none"
                node.error(
                    f'datasource "{name}" is not a resource of the application (resources: '
                    f"{known}){did_you_mean(name, by_id)}",
                    "datasource",
                )
                continue
            if resource.type not in accepted:
                node.error(
                    f'datasource "{name}" is a {resource.type} resource; {parsed.spec.type} '
                    f"takes a {' or a '.join(accepted)}",
                    "datasource",
                )
                continue
            why = unsupported_datasource(resource.configuration)
            if why is not None:
                unsupported.append(node.problem(f'datasource "{name}" {why}', "datasource"))
            elif parsed.spec.type == "vector-db-sink":
                _metadata_keys(node, parsed.spec.configuration, name, resource)
    return unsupported


def _metadata_keys(
    node: Node, configuration: Mapping[str, Any], name: str, resource: ResourceSpec
) -> None:
    """Warn on each ``vector.metadata.<name>`` key of a sink whose datasource is not pinecone's
    (the only writer that reads them)."""
    service = str(resource.configuration.get("service") or "")
    if service == METADATA_SERVICE:
        return
    for key in configuration:
        if str(key).startswith(METADATA):
            node.warn(
                f'"{key}" is read only on a {METADATA_SERVICE} datasource; datasource "{name}" '
                f"is {service}: ignored",
                str(key),
            )
