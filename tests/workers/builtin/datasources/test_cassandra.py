"""The ``cassandra`` / ``astra`` datasource and its ``vector-db-sink`` writer on a real Cassandra 5
(vector search with SAI): settings from LangStream's keys, queries with ``?`` parameters, ANN
search, writes by key (a redelivery leaves one row), deletes, and errors that name the datasource
and never the password. A restart of the database mid-stream is in test_cassandra_workers.py (a
real worker, its errors policy retrying)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sluice.record import Record
from tests.cassandra.server import (
    PASSWORD,
    USER,
    LocalCassandra,
    cassandra_resource,
    keyspace_name,
)
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings
from workers.builtin.datasources.cassandra_sink import CassandraWriter, parse_mapping
from workers.builtin.datasources.cql import column_value, count_markers, cql_value
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError

java = pytest.mark.java


# ---- pure: keys and CQL text -------------------------------------------------------------


def test_settings_from_langstream_keys() -> None:
    settings = cassandra_settings(
        "db",
        {
            "service": "cassandra",
            "contact-points": "h1, h2",
            "port": "9043",
            "loadBalancing-localDc": "dc1",
            "username": "u",
            "password": "p",
            "unknown-key": 1,
        },
    )
    assert settings.contact_points == ("h1", "h2")
    assert (settings.port, settings.local_dc, settings.username, settings.password) == (
        9043,
        "dc1",
        "u",
        "p",
    )
    assert settings.ignored == ("unknown-key",)
    assert settings.shown == "h1:9043,h2:9043"
    assert "p" not in repr(settings).replace("port", "").replace("points", "")


def test_astra_keys_map_to_the_cloud_config() -> None:
    bundle = base64.b64encode(b"PK-zip-bytes").decode()
    settings = cassandra_settings(
        "astra", {"service": "astra", "secureBundle": "base64:" + bundle, "token": "AstraCS:x"}
    )
    assert settings.secure_bundle == b"PK-zip-bytes"
    assert (settings.username, settings.password) == ("token", "AstraCS:x")
    assert settings.shown == "astra (secure bundle)"
    client = cassandra_settings(
        "astra", {"secureBundle": bundle, "clientId": "id", "secret": "s", "token": "t"}
    )
    assert (client.username, client.password) == ("id", "s")


def test_an_astra_database_by_name_or_id_goes_through_the_devops_api() -> None:
    by_name = cassandra_settings(
        "astra",
        {
            "service": "astra",
            "clientId": "token",
            "secret": "AstraCS:x",
            "token": "AstraCS:x",
            "database": "db1",
            "database-id": "ignored-when-named",
        },
    )
    assert by_name.astra is not None and by_name.secure_bundle is None
    assert (by_name.astra.name, by_name.astra.api) == ("db1", "https://api.astra.datastax.com/v2")
    assert by_name.shown == 'astra database "db1" at https://api.astra.datastax.com/v2'
    assert "AstraCS:x" in by_name.secrets and "AstraCS" not in repr(by_name)
    by_id = cassandra_settings(
        "astra", {"token": "t", "database-id": "0c1d", "environment": "dev"}
    ).astra
    assert by_id is not None
    assert (by_id.id, by_id.api) == ("0c1d", "https://api.dev.cloud.datastax.com/v2")
    private = cassandra_settings(
        "astra", {"token": "t", "database": "d", "environment": "http://127.0.0.1:9/v2/"}
    ).astra
    assert private is not None and private.api == "http://127.0.0.1:9/v2"


# The driver's cloud module builds its TLS context with ssl.PROTOCOL_TLS (deprecated).
@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
async def test_the_bundle_goes_to_the_drivers_cloud_config() -> None:
    """The driver opens the bundle (in memory) and its certificates: a bundle that is not a zip,
    and one whose certificates are not, stop the start with the driver's reason, never the
    token."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as bundle:
        config = {"host": "127.0.0.1", "port": 1, "keyspace": "k", "localDC": "dc1"}
        bundle.writestr("config.json", json.dumps(config))
        for name in ("ca.crt", "cert", "key"):
            bundle.writestr(name, "not a certificate")
    for data, reason in ((b"not a zip", "Unable to open the zip file"), (packed.getvalue(), "")):
        resource = {
            "service": "astra",
            "secureBundle": base64.b64encode(data).decode(),
            "token": "AstraCS:never-shown",
        }
        source = CassandraDataSource("Astra", cassandra_settings("Astra", resource))
        with pytest.raises(DataSourceResourceError) as error:
            await source.start()
        message = str(error.value)
        assert message.startswith('datasource "Astra" (astra (secure bundle)): cannot connect: ')
        assert reason in message
        assert "never-shown" not in message


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"service": "astra", "database": "db", "secret": "s"}, "database-id need token"),
        ({"database": "db", "token": "t", "environment": "STAGING"}, "environment must be PROD"),
        ({"service": "cassandra"}, "give contact-points"),
        ({"secureBundle": "not base64!"}, "secureBundle must be"),
        ({"contact-points": "h", "port": "x"}, "port must be a number"),
    ],
)
def test_bad_settings_are_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(DataSourceResourceError, match=message) as error:
        cassandra_settings("db", config)
    assert 'datasource "db"' in str(error.value)


def test_markers_outside_literals_and_comments() -> None:
    assert count_markers("SELECT a FROM t WHERE b = ? AND c = '?''?' AND d = ?") == 2
    assert count_markers('SELECT "?" FROM t /* ? */ WHERE x = ? -- ?\n AND y = ? // ?') == 2
    assert count_markers("SELECT $$ ? $$, ? FROM t") == 1


def test_mapping_of_the_kafka_sink() -> None:
    assert parse_mapping("w", "id=value.id,description=value.description, k=key") == [
        ("id", "value.id"),
        ("description", "value.description"),
        ("k", "key"),
    ]
    with pytest.raises(DataSourceResourceError, match=r"mapping entry 'id:value\.id'"):
        parse_mapping("w", "id:value.id")
    with pytest.raises(DataSourceResourceError, match="mapping is required"):
        parse_mapping("w", " ")


def test_result_values_are_json() -> None:
    import datetime
    import uuid

    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5)
    ident = uuid.UUID(int=7)
    assert cql_value({"a": {1, 2}, "t": stamp, "u": ident, "b": b"\x01"}) == {
        "a": [1, 2],
        "t": "2026-01-02T03:04:05+00:00",
        "u": str(ident),
        "b": "AQ==",
    }


def test_mapped_values_take_their_columns_type() -> None:
    """As the DataStax Kafka sink converted them: texts parsed into number and boolean columns,
    numbers into text columns as their text; anything else left to the driver."""
    import decimal

    assert column_value("int", "0") == 0
    assert column_value("bigint", " 12 ") == 12
    assert column_value("int", 3.0) == 3
    assert column_value("double", "0.25") == 0.25
    assert column_value("float", 2) == 2.0
    assert column_value("decimal", "1.10") == decimal.Decimal("1.10")
    assert column_value("boolean", "TRUE") is True
    assert column_value("text", 7) == "7"
    assert column_value("text", False) == "false"
    assert column_value("int", [1]) == [1]
    assert column_value("vector<float, 3>", "x") == "x"
    for kind, text in (("int", "one"), ("double", "x"), ("decimal", "?"), ("boolean", "yes")):
        with pytest.raises(ValueError, match=repr(text).replace("?", r"\?")):
            column_value(kind, text)


# ---- the real server --------------------------------------------------------------------


async def cql(node: LocalCassandra, *statements: str) -> list[dict[str, Any]]:
    source = CassandraDataSource("admin", cassandra_settings("admin", cassandra_resource(node)))
    await source.start()
    try:
        rows: list[dict[str, Any]] = []
        for statement in statements:
            rows = await source.run(statement, [])
        return rows
    finally:
        await source.close()


@pytest.fixture
async def keyspace(cassandra_server: LocalCassandra) -> str:
    name = keyspace_name()
    await cql(
        cassandra_server,
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        f"CREATE TABLE {name}.docs (id text, chunk int, text text, vec vector<float, 3>, "
        "PRIMARY KEY (id, chunk))",
        f"CREATE CUSTOM INDEX ON {name}.docs (vec) USING 'StorageAttachedIndex' "
        "WITH OPTIONS = {'similarity_function': 'COSINE'}",
    )
    return name


@pytest.fixture
async def datasource(cassandra_server: LocalCassandra) -> AsyncIterator[CassandraDataSource]:
    source = CassandraDataSource(
        "Cassandra", cassandra_settings("c", cassandra_resource(cassandra_server))
    )
    await source.start()
    yield source
    await source.close()


@java
async def test_write_query_and_vector_search(
    datasource: CassandraDataSource, keyspace: str
) -> None:
    insert = f"INSERT INTO {keyspace}.docs (id, chunk, text, vec) VALUES (?, ?, ?, ?)"
    for index, vector in enumerate(([1, 0, 0], [0, 1, 0], [0.9, 0.1, 0])):
        assert await datasource.execute(insert, ["doc", index, f"t{index}", vector]) == {}
    rows = await datasource.fetch(
        f"SELECT chunk, text FROM {keyspace}.docs WHERE id = ? AND chunk >= ?", ["doc", 1]
    )
    assert rows == [{"chunk": 1, "text": "t1"}, {"chunk": 2, "text": "t2"}]
    nearest = await datasource.fetch(
        f"SELECT text, vec, similarity_cosine(vec, ?) AS score FROM {keyspace}.docs "
        "ORDER BY vec ANN OF ? LIMIT 2",
        [[1.0, 0.0, 0.0], [1, 0, 0]],
    )
    assert [row["text"] for row in nearest] == ["t0", "t2"]
    assert nearest[0]["vec"] == [1.0, 0.0, 0.0]
    assert nearest[0]["score"] == pytest.approx(1.0)
    json.dumps(nearest)  # JSON values only


@java
async def test_a_bad_statement_fails_naming_the_datasource(
    datasource: CassandraDataSource, keyspace: str
) -> None:
    with pytest.raises(DataSourceError) as error:
        await datasource.fetch(f"SELECT nope FROM {keyspace}.docs WHERE id = ?", ["x"])
    assert 'datasource "Cassandra"' in str(error.value)
    assert "nope" in str(error.value)
    with pytest.raises(DataSourceError, match="int"):
        await datasource.fetch(
            f"SELECT text FROM {keyspace}.docs WHERE id = ? AND chunk = ?", ["x", "one"]
        )


@java
async def test_values_must_match_the_markers(
    datasource: CassandraDataSource, keyspace: str
) -> None:
    query = f"SELECT text FROM {keyspace}.docs WHERE id = ? AND chunk = ?"
    with pytest.raises(DataSourceError, match=r"the query has 2 \? parameters and 1 value"):
        await datasource.fetch(query, ["x"])


@java
async def test_a_refused_login_stops_the_start_without_the_password(
    cassandra_server: LocalCassandra,
) -> None:
    source = CassandraDataSource(
        "Cassandra",
        cassandra_settings("c", cassandra_resource(cassandra_server, password=PASSWORD + "x")),
    )
    with pytest.raises(DataSourceResourceError) as error:
        await source.start()
    message = str(error.value)
    assert 'datasource "Cassandra"' in message and "cannot connect" in message
    assert PASSWORD not in message
    assert USER in message or "authenticat" in message.lower()


def writer(node: LocalCassandra, keyspace: str, **config: Any) -> CassandraWriter:
    agent = {
        "table-name": "docs",
        "keyspace": keyspace,
        "mapping": "id=value.id, chunk=value.chunk, text=value.text, vec=value.vec",
        **config,
    }
    return CassandraWriter("Cassandra", cassandra_resource(node), agent)


def chunk(doc: str, index: int, text: str | None = None) -> Record:
    value = {"id": doc, "chunk": index, "text": text or f"{doc} {index}", "vec": [1, index, 0.5]}
    return Record(json.dumps(value), key=doc)


@java
async def test_sink_writes_by_key_and_redelivery_leaves_one_row(
    cassandra_server: LocalCassandra, keyspace: str
) -> None:
    sink = writer(cassandra_server, keyspace)
    await sink.start()
    try:
        for record in [chunk("a", 0), chunk("a", 1), chunk("b", 0), chunk("a", 1, "again")]:
            await sink.write(record)
        await sink.write(chunk("a", 0))  # redelivered
        await sink.write(Record(json.dumps({"id": "b", "chunk": 0}), key="b"))  # a delete
    finally:
        await sink.close()
    rows = await cql(cassandra_server, f"SELECT id, chunk, text, vec FROM {keyspace}.docs")
    assert sorted((r["id"], r["chunk"], r["text"], r["vec"]) for r in rows) == [
        ("a", 0, "a 0", [1.0, 0.0, 0.5]),
        ("a", 1, "again", [1.0, 1.0, 0.5]),
    ]


@java
async def test_sink_converts_texts_to_the_columns_type(
    cassandra_server: LocalCassandra, keyspace: str
) -> None:
    """LangStream's webcrawler examples map ``chunk_id=value.chunk_id``, a text, to an int."""
    sink = writer(cassandra_server, keyspace)
    await sink.start()
    try:
        value = {"id": "a", "chunk": "2", "text": 42, "vec": ["1", 0, 0.5]}
        await sink.write(Record(json.dumps(value), key="a"))
        with pytest.raises(DataSourceError, match=r"column chunk \(int\) of .*\.docs"):
            await sink.write(Record(json.dumps({**value, "chunk": "two"}), key="a"))
    finally:
        await sink.close()
    rows = await cql(cassandra_server, f"SELECT id, chunk, text, vec FROM {keyspace}.docs")
    assert [(r["id"], r["chunk"], r["text"], r["vec"]) for r in rows] == [
        ("a", 2, "42", [1.0, 0.0, 0.5])
    ]


@java
async def test_sink_configuration_errors(cassandra_server: LocalCassandra, keyspace: str) -> None:
    with pytest.raises(DataSourceResourceError, match="table-name is required"):
        writer(cassandra_server, keyspace, **{"table-name": ""})
    with pytest.raises(DataSourceResourceError, match=r"must be keyspace\.table"):
        writer(cassandra_server, "", **{"table-name": "docs"})
    sink = writer(cassandra_server, keyspace, mapping="text=value.text, chunk=value.chunk")
    await sink.start()
    try:
        with pytest.raises(DataSourceError, match="primary key column id"):
            await sink.write(chunk("a", 0))
        missing = writer(cassandra_server, keyspace, **{"table-name": "nothing"})
        await missing.start()
        with pytest.raises(DataSourceError, match=rf"table {keyspace}.nothing does not exist"):
            await missing.write(chunk("a", 0))
        await missing.close()
    finally:
        await sink.close()
