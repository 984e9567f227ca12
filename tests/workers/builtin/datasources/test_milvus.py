"""The ``milvus`` datasource: its keys and queries (pure), and against a real Milvus Lite server
the collection statements of LangStream's assets, writes by primary key, nearest-neighbour
search, and a server killed and started again in the middle of a stream."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymilvus import AsyncMilvusClient

from sluice.milvus import LocalMilvus
from sluice.record import Record
from tests.milvus.server import collection_name, milvus_resource, milvus_server
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.milvus import MilvusCollections, MilvusDataSource, MilvusWriter
from workers.builtin.datasources.milvus_config import milvus_settings, search_request
from workers.builtin.datasources.milvus_statements import (
    CreateCollection,
    CreateIndex,
    LoadCollection,
    parse_statement,
)

__all__ = ["milvus_server"]

DIMENSION = 4
CREATE = """
{
  "command": "create-collection",
  "collection-name": "%s",
  "database-name": "default",
  "field-types": [
    {"name": "name", "primary-key": true, "data-type": "Varchar", "max-length": 256},
    {"name": "text", "data-type": "Varchar", "max-length": 1024},
    {"name": "vector", "data-type": "FloatVector", "dimension": %d}
  ]
}
"""
INDEX = """
{"command": "create-index", "collection-name": "%s", "field-name": "vector",
 "index-name": "vector_index", "index-type": "AUTOINDEX", "metric-type": "L2"}
"""
LOAD = '{"command": "load-collection"}'
QUERY = """
{"collection-name": "%s", "vectors": ?, "top-k": 10, "limit": 3, "output-fields": ["text"]}
"""
FIELDS = [
    {"name": "name", "expression": "fn:concat(key.name, key.chunk_id)"},
    {"name": "vector", "expression": "fn:toListOfFloat(value.vector)"},
    {"name": "text", "expression": "value.text"},
    {"name": "num_tokens", "expression": "value.tokens"},  # not in the collection
]


# -- pure ---------------------------------------------------------------------------------------


def test_settings_host_port_url_and_token() -> None:
    settings = milvus_settings("m", {"host": "db", "port": "19531", "user": "u", "password": "p"})
    assert (settings.uri, settings.user, settings.password) == ("http://db:19531", "u", "p")
    assert settings.write_mode == "upsert"
    assert milvus_settings("m", {"host": "db", "user": "default"}).user == ""  # no password
    assert milvus_settings("m", {"host": "db", "username": "x", "password": "y"}).user == "x"
    zilliz = milvus_settings("m", {"url": "https://z.example", "token": "t0k", "host": "h"})
    assert (zilliz.uri, zilliz.token) == ("https://z.example", "t0k")
    assert "t0k" not in repr(zilliz) and zilliz.redact("bad t0k") == "bad ****"
    assert milvus_settings("m", {"host": "h", "write-mode": "delete-insert"}).write_mode == (
        "delete-insert"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r'datasource "m": host \(or url\) is required'),
        ({"host": "h", "port": "abc"}, "port must be a number"),
        ({"host": "h", "port": 70000}, "port must be a port number"),
        ({"host": "h", "write-mode": "insert"}, "write-mode must be upsert or delete-insert"),
    ],
)
def test_settings_errors_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(DataSourceResourceError, match=message):
        milvus_settings("m", config)


def test_search_request_keys_as_langstream_read_them() -> None:
    request = search_request(
        "w",
        {
            "collection-name": "docs",
            "vectors": [1, 2.5],
            "top-k": 3,
            "output-fields": ["text"],
            "filter": "lang == 'en'",
            "consistency-level": "strong",
        },
    )
    assert request.vector == [1.0, 2.5] and request.limit == 10  # top-k meant nothing
    assert request.ignored == ("top-k",) and request.consistency_level == "Strong"
    for query, message in (
        ({"vectors": [1]}, "needs a collection-name"),
        ({"collection-name": "d", "vectors": ["a"]}, "vectors must be a non-empty list"),
        ({"collection-name": "d", "vectors": [1], "limit": 0}, "limit must be a whole number"),
        ({"collection-name": "d", "vectors": [1], "consistency-level": "x"}, "consistency"),
    ):
        with pytest.raises(DataSourceError, match=message):
            search_request("w", query)


def test_statements_parse_langstream_json() -> None:
    create = parse_statement("s1", CREATE % ("docs", 8), "docs")
    assert isinstance(create, CreateCollection)
    assert [(f.name, f.data_type, f.primary_key) for f in create.fields] == [
        ("name", "VARCHAR", True),
        ("text", "VARCHAR", False),
        ("vector", "FLOAT_VECTOR", False),
    ]
    assert create.fields[2].dimension == 8
    index = parse_statement("s2", INDEX % "docs", "docs")
    assert isinstance(index, CreateIndex) and (index.index_type, index.metric_type) == (
        "AUTOINDEX",
        "L2",
    )
    assert parse_statement("s3", LOAD, "assetcoll") == LoadCollection("assetcoll")
    for text, message in (
        ('{"command": "drop"}', "command must be"),
        ("{", "not JSON"),
        (
            '{"command": "create-collection", "field-types": [{"name": "x", "data-type": "Z"}]}',
            "data-type 'Z' is not a Milvus type",
        ),
    ):
        with pytest.raises(DataSourceError, match=message):
            parse_statement("statement 2", text, "c")


# -- on a real Milvus Lite server ---------------------------------------------------------------


async def make_collection(server: LocalMilvus) -> str:
    name = collection_name()
    collections = MilvusCollections("m", milvus_resource(server))
    await collections.start()
    try:
        assert not await collections.exists(name)
        for text in (CREATE % (name, DIMENSION), INDEX % name, LOAD):
            await collections.run(parse_statement("s", text, name))
        assert await collections.exists(name)
    finally:
        await collections.close()
    return name


async def count(server: LocalMilvus, name: str) -> int:
    client = AsyncMilvusClient(uri=server.uri)
    try:
        rows = await client.query(name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])
    finally:
        await client.close()


def chunk(name: str, index: int, vector: list[Any], text: str | None = None) -> Record:
    key = json.dumps({"name": name, "chunk_id": index})
    value = {"vector": vector, "text": text or f"{name} {index}", "tokens": 3}
    return Record(json.dumps(value), key=key)


@pytest.fixture
async def collection(milvus_server: LocalMilvus) -> str:
    return await make_collection(milvus_server)


@pytest.fixture
async def source(milvus_server: LocalMilvus) -> AsyncIterator[MilvusDataSource]:
    datasource = MilvusDataSource("m", milvus_resource(milvus_server))
    await datasource.start()
    yield datasource
    await datasource.close()


async def writer_for(server: LocalMilvus, name: str, **resource: Any) -> MilvusWriter:
    writer = MilvusWriter(
        "m", milvus_resource(server, **resource), {"collection-name": name, "fields": FIELDS}
    )
    await writer.start()
    return writer


async def test_write_then_search_nearest_first(
    milvus_server: LocalMilvus,
    collection: str,
    source: MilvusDataSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = await writer_for(milvus_server, collection)
    try:
        with caplog.at_level(logging.WARNING):
            vectors: list[list[float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0.9, 0.2, 0, 0]]
            for index, vector in enumerate(vectors):
                await writer.write(chunk("doc", index, vector))
        assert "fields num_tokens are not in the collection" in caplog.text
        rows = await source.fetch(QUERY % collection, [[1, 0, 0, 0]])
        assert [r["id"] for r in rows] == ["doc0", "doc2", "doc1"]
        assert rows[0] == {"id": "doc0", "distance": 0.0, "text": "doc 0"}
        assert rows[1]["distance"] == pytest.approx(0.05, abs=1e-5)
        assert "top-k mean nothing to a Milvus search" in caplog.text
        with pytest.raises(DataSourceError, match="mode execute is not supported"):
            await source.execute(QUERY % collection, [[1, 0, 0, 0]])
    finally:
        await writer.close()


@pytest.mark.parametrize("write_mode", ["upsert", "delete-insert"])
async def test_a_record_written_again_leaves_one_entity_and_null_deletes(
    milvus_server: LocalMilvus, collection: str, source: MilvusDataSource, write_mode: str
) -> None:
    writer = await writer_for(milvus_server, collection, **{"write-mode": write_mode})
    try:
        await writer.write(chunk("it's", 1, [0, 0, 1, 0], "first"))
        await writer.write(chunk("it's", 1, [0, 0, 1, 0], "first"))  # redelivered
        await writer.write(chunk("it's", 1, [0, 0, 0, 1], "changed"))
        assert await count(milvus_server, collection) == 1
        [row] = await source.fetch(QUERY % collection, [[0, 0, 0, 1]])
        assert row == {"id": "it's1", "distance": 0.0, "text": "changed"}
        gone = Record(None, key=json.dumps({"name": "it's", "chunk_id": 1}))
        await writer.write(gone)
        assert await count(milvus_server, collection) == 0
    finally:
        await writer.close()


async def test_a_server_restarted_mid_stream_loses_nothing(
    milvus_server: LocalMilvus, collection: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes fail while the server is down (the errors policy retries them); after it is
    back every record is there once and searches work again (the collection reloaded)."""
    caplog.set_level(logging.CRITICAL, logger="pymilvus")
    writer = await writer_for(milvus_server, collection)
    source = MilvusDataSource("m", milvus_resource(milvus_server))
    await source.start()
    messages: list[str] = []
    try:
        for index in range(30):
            if index == 10:
                await milvus_server.kill()
            if index == 15 and not milvus_server.running:
                await milvus_server.start()
            record = chunk("doc", index, [1, index, 0, 0])
            while True:
                try:
                    await writer.write(record)
                    break
                except DataSourceError as error:
                    messages.append(str(error))
                    if not milvus_server.running:
                        await milvus_server.start()
        assert messages
        assert all('datasource "m" (milvus http://127.0.0.1:' in m for m in messages)
        assert await count(milvus_server, collection) == 30
        rows = await source.fetch(QUERY % collection, [[1, 12, 0, 0]])
        assert rows[0]["id"] == "doc12"
    finally:
        if not milvus_server.running:
            await milvus_server.start()
        await writer.close()
        await source.close()


async def test_unreachable_server_and_missing_collection_fail_at_start(
    milvus_server: LocalMilvus,
) -> None:
    resource = {
        "service": "milvus",
        "host": "127.0.0.1",
        "port": 1,
        "password": "s3cret",
        "user": "root",
        "connection-timeout-seconds": 2,
    }
    source = MilvusDataSource("m", resource)
    with pytest.raises(DataSourceResourceError, match="cannot connect") as caught:
        await source.start()
    assert "s3cret" not in str(caught.value)
    writer = MilvusWriter(
        "m", milvus_resource(milvus_server), {"collection-name": "nope", "fields": FIELDS}
    )
    with pytest.raises(DataSourceResourceError, match="reading the collection nope"):
        await writer.start()


def test_without_pymilvus_the_agent_says_which_extra() -> None:
    """A worker without the milvus extra: the agent's init names the extra (pymilvus blocked
    in a fresh interpreter)."""
    program = textwrap.dedent(
        """
        import sys
        sys.modules["pymilvus"] = None
        from workers.builtin.datasources import open_vector_writer
        config = {"datasource": "m", "resources": {"m": {"service": "milvus", "host": "h"}}}
        try:
            open_vector_writer("vector-db-sink", config)
        except ValueError as error:
            print(error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert "install the milvus extra: pip install 'sluicegate[milvus]'" in done.stdout
