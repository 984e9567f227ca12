"""The datasource agents on a ``milvus`` resource in real worker processes, on the real broker
and a real Milvus Lite server: ``query-vector-db`` with LangStream's JSON search (a failing
search under ``dead-letter``), and ``vector-db-sink`` killed mid-stream and redelivered (one
entity per key)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.milvus import LocalMilvus
from sluice.record import Record
from tests.milvus.server import collection_name, milvus_resource, milvus_server
from tests.workers.builtin.datasources.test_milvus import CREATE, INDEX, LOAD, count
from tests.workers.conftest import StartApp, StartWorker, prepare, read_all, send
from workers.builtin.datasources.milvus import MilvusCollections, MilvusWriter
from workers.builtin.datasources.milvus_statements import parse_statement

__all__ = ["milvus_server"]

pytestmark = pytest.mark.kafka

CONFIGURATION = """
configuration:
  resources:
    - type: "{kind}"
      name: "MilvusDatasource"
      configuration:
        service: "milvus"
        host: "127.0.0.1"
        port: "{port}"
"""


async def documents(server: LocalMilvus, *entities: dict[str, Any]) -> str:
    name = collection_name()
    collections = MilvusCollections("m", milvus_resource(server))
    await collections.start()
    try:
        for text in (CREATE % (name, 3), INDEX % name, LOAD):
            await collections.run(parse_statement("s", text, name))
    finally:
        await collections.close()
    if entities:
        fields = [{"name": k, "expression": f"value.{k}"} for k in ("name", "text", "vector")]
        writer = MilvusWriter(
            "m", milvus_resource(server), {"collection-name": name, "fields": fields}
        )
        await writer.start()
        try:
            for entity in entities:
                await writer.write(Record(json.dumps(entity)))
        finally:
            await writer.close()
    return name


QUERY = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: query-vector-db
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      datasource: "MilvusDatasource"
      query: |
        {{
          "collection-name": "{collection}",
          "vectors": ?,
          "top-k": 10,
          "limit": 2,
          "output-fields": ["text"]
        }}
      fields: ["value.embeddings"]
      output-field: "value.related_documents"
"""


async def test_query_vector_db_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    milvus_server: LocalMilvus,
) -> None:
    collection = await documents(
        milvus_server,
        {"name": "a", "text": "ta", "vector": [1, 0, 0]},
        {"name": "b", "text": "tb", "vector": [0, 1, 0]},
        {"name": "c", "text": "tc", "vector": [0.9, 0.2, 0]},
    )
    worker = await start_app(
        {
            "pipeline.yaml": QUERY.format(**topics, collection=collection),
            "configuration.yaml": CONFIGURATION.format(kind="datasource", port=milvus_server.port),
        }
    )
    for key, value in (
        ("k1", {"embeddings": [1, 0, 0]}),
        ("bad", {"embeddings": [1, 0]}),  # a vector of the wrong size
        ("k2", {"embeddings": [0, 1, 0]}),
    ):
        await send(producer, topics["inp"], Record(json.dumps(value), key=key))
    got = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    assert await worker.stop() == 0
    assert [o.record.key for o in got] == ["k1", "k2"]
    first = json.loads(got[0].record.value)["related_documents"]
    assert [(r["id"], r["text"]) for r in first] == [("a", "ta"), ("c", "tc")]
    assert first[0]["distance"] == 0.0
    assert json.loads(got[1].record.value)["related_documents"][0]["id"] == "b"
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.key == "bad"
    headers = dead.record.headers
    assert headers["error-class"] == "workers.builtin.datasources.errors.DataSourceError"
    assert 'datasource "MilvusDatasource"' in headers["error-message"]


SINK = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail}}
    configuration:
      datasource: "MilvusDatasource"
      collection-name: "COLLECTION"
      fields:
        - name: "name"
          expression: "fn:concat(value.filename, value.chunk_id)"
        - name: "vector"
          expression: "fn:toListOfFloat(value.embeddings_vector)"
        - name: "text"
          expression: "value.text"
"""


def chunk(name: str, index: int) -> Record:
    value = {
        "filename": name,
        "chunk_id": index,
        "text": f"{name} chunk {index}",
        "embeddings_vector": [1, index, 0.5],
    }
    return Record(json.dumps(value), key=name)


async def test_vector_db_sink_redelivered_after_sigkill_writes_one_entity_per_key(
    app_factory: Any,
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
    milvus_server: LocalMilvus,
) -> None:
    collection = await documents(milvus_server)
    configuration = CONFIGURATION.replace("{kind}", "vector-database").replace(
        "{port}", str(milvus_server.port)
    )
    app_dir = app_factory(
        {
            "pipeline.yaml": SINK.replace("COLLECTION", collection),
            "configuration.yaml": configuration.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    records = [chunk(f"doc{d}", i) for d in range(4) for i in range(5)]
    await send(producer, topics["inp"], *records[:10])
    killed = await start_worker(
        app_dir, "write", env={"SLUICE_FAULT_KILL_AFTER": "6"}, ready=False, instance=fast_instance
    )
    assert await killed.exited(within=60) == -9, "\n".join(killed.output)
    await send(producer, topics["inp"], *records[10:])
    await send(producer, topics["inp"], *records[:3])  # sent twice too
    final = await start_worker(app_dir, "write", instance=fast_instance)
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        if await count(milvus_server, collection) == 20:
            break
        await asyncio.sleep(0.3)
    await asyncio.sleep(1)  # the rest of the redelivered records, if any
    assert await final.stop() == 0, "\n".join(final.output)
    assert await count(milvus_server, collection) == 20


RESTARTED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail, retries: 40}}
    configuration:
      datasource: "MilvusDatasource"
      collection-name: "{collection}"
      fields:
        - name: "name"
          expression: "fn:concat(value.filename, value.chunk_id)"
        - name: "vector"
          expression: "fn:toListOfFloat(value.embeddings_vector)"
        - name: "text"
          expression: "value.text"
"""


async def test_vector_db_sink_across_a_server_crash(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    milvus_server: LocalMilvus,
) -> None:
    """Milvus Lite is killed mid-stream and started again on the same port: the writes made
    meanwhile fail and are retried (the errors policy) while the client reconnects; every record
    ends as one entity."""
    collection = await documents(milvus_server)
    worker = await start_app(
        {
            "pipeline.yaml": RESTARTED.format(**topics, collection=collection),
            "configuration.yaml": CONFIGURATION.format(
                kind="vector-database", port=milvus_server.port
            ),
        },
        executor="write",
    )

    async def entities(expected: int, within: float = 90) -> int:
        deadline = asyncio.get_running_loop().time() + within
        got = 0
        while asyncio.get_running_loop().time() < deadline:
            got = await count(milvus_server, collection)
            if got >= expected:
                break
            await asyncio.sleep(0.3)
        return got

    try:
        await send(producer, topics["inp"], *[chunk("before", i) for i in range(10)])
        assert await entities(10) == 10
        await milvus_server.kill()
        await send(producer, topics["inp"], *[chunk("during", i) for i in range(10)])
        await asyncio.sleep(2)  # records fail and are retried meanwhile
    finally:
        if not milvus_server.running:
            await milvus_server.start()
    await send(producer, topics["inp"], *[chunk("after", i) for i in range(5)])
    assert await entities(25) == 25
    await asyncio.sleep(1)
    assert await worker.stop() == 0, "\n".join(worker.output)
    assert await count(milvus_server, collection) == 25
    retried = [line for line in worker.output if "DataSourceError" in line and "retry" in line]
    assert retried, "no write failed while the server was down"
    assert 'datasource "MilvusDatasource"' in retried[0]
