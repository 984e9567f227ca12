"""An application in the shape of LangStream's query-milvus example under ``sluice run`` (our
own YAML): a ``milvus`` datasource naming this machine, where nothing listens, gets a Milvus Lite
server from ``sluice run``; the ``milvus-collection`` asset (create-collection, create-index,
load-collection) is created before the workers; the indexing pipeline writes chunks with
``vector-db-sink`` (a field the collection does not have left out) and the chat pipeline finds
them with ``query-vector-db``'s JSON search. A second run finds the collection there; the
asset's ``deletion-mode: delete`` drops it. Plus the loader's checks of the asset's keys."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from sluice.kafka import KafkaSettings, Producer
from sluice.local.assets import delete_assets
from sluice.local.milvus import wanted_milvus
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.record import Record
from tests.workers.conftest import read_all

CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "MilvusDatasource"
      configuration:
        service: "milvus"
        username: "root"
        password: "Milvus"
        host: "localhost"
        port: "{port}"
        write-mode: "upsert"
"""

CRAWLER = """
name: "Index documents"
topics:
  - name: "chunks-{run}"
    creation-mode: create-if-not-exists
assets:
  - name: "documents-table"
    asset-type: "milvus-collection"
    creation-mode: create-if-not-exists
    deletion-mode: delete
    config:
      collection-name: "docs"
      database-name: "default"
      datasource: "MilvusDatasource"
      create-statements:
        - |
          {
              "command": "create-collection",
              "collection-name": "docs",
              "database-name": "default",
              "field-types": [
                 {"name": "filename_and_chunkid", "primary-key": true, "data-type": "Varchar",
                  "max-length": 1024},
                 {"name": "text", "data-type": "Varchar", "max-length": 65535},
                 {"name": "language", "data-type": "Varchar", "max-length": 3},
                 {"name": "vector", "data-type": "FloatVector", "dimension": 3}
              ]
          }
        - |
          {
             "command": "create-index",
             "collection-name": "docs",
             "database-name": "default",
             "field-name": "vector",
             "index-name": "vector_index",
             "index-type": "AUTOINDEX",
             "metric-type": "L2"
          }
        - |
          {
             "command": "load-collection"
          }
pipeline:
  - name: "Write to Milvus"
    type: "vector-db-sink"
    input: "chunks-{run}"
    configuration:
      datasource: "MilvusDatasource"
      collection-name: "docs"
      fields:
        - name: "filename_and_chunkid"
          expression: "fn:concat(value.filename, value.chunk_id)"
        - name: "vector"
          expression: "fn:toListOfFloat(value.embeddings_vector)"
        - name: "language"
          expression: "value.language"
        - name: "text"
          expression: "value.text"
        - name: "num_tokens"
          expression: "value.chunk_num_tokens"
"""

CHATBOT = """
topics:
  - name: "questions-{run}"
    creation-mode: create-if-not-exists
  - name: "answers-{run}"
    creation-mode: create-if-not-exists
errors:
    on-failure: "skip"
pipeline:
  - name: "lookup-related-documents"
    type: "query-vector-db"
    input: "questions-{run}"
    configuration:
      datasource: "MilvusDatasource"
      query: |
        {
          "collection-name": "docs",
          "vectors": ?,
          "top-k": 10,
          "output-fields": ["text"]
        }
      fields:
        - "value.question_embeddings"
      output-field: "value.related_documents"
  - name: "cleanup-response"
    type: "drop-fields"
    output: "answers-{run}"
    configuration:
      fields:
        - "question_embeddings"
"""


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def instance_file(tmp_path: Path, bootstrap: str) -> Path:
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{bootstrap}'}}\n"
    )
    return instance


CHUNKS = [
    ("https://docs.example/a", 1, "sluice runs pipelines", [1.0, 0.0, 0.0]),
    ("https://docs.example/a", 2, "milvus stores vectors", [0.0, 1.0, 0.0]),
    ("https://docs.example/b", 1, "kafka carries records", [0.0, 0.0, 1.0]),
]


@pytest.mark.kafka
async def test_query_milvus_shape_under_sluice_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    run = f"m{port}"
    app_dir = write(
        tmp_path / "app",
        {
            "configuration.yaml": CONFIGURATION.replace("{port}", str(port)),
            "crawler.yaml": CRAWLER.replace("{run}", run),
            "chatbot.yaml": CHATBOT.replace("{run}", run),
        },
    )
    instance = instance_file(tmp_path, kafka_bootstrap)
    app = load_application(app_dir, instance=instance)
    assert wanted_milvus(app) == {port: "MilvusDatasource"}
    settings = RunSettings(
        app_dir=app_dir,
        instance=instance,
        gateway_port=free_port(),
        state_dir=tmp_path / "state",
        postgres_data_dir=tmp_path / "data",
    )
    lines: list[str] = []
    for attempt in range(2):  # the second run finds the collection and its entities there
        async with run_application(app, settings) as running:
            assert all(worker.running for worker in running.workers), running.workers
            async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
                if attempt == 0:
                    for filename, chunk_id, text, vector in CHUNKS:
                        value = {
                            "filename": filename,
                            "chunk_id": str(chunk_id),
                            "language": "en",
                            "text": text,
                            "embeddings_vector": vector,
                            "chunk_num_tokens": "4",
                        }
                        await producer.send(
                            f"chunks-{run}", Record(json.dumps(value)), source="/test"
                        )
                    # the sink writes asynchronously: ask once every chunk is surely there
                    await _until_written(port, 3)
                question = {"question": "what stores vectors?", "question_embeddings": [0, 1, 0]}
                await producer.send(
                    f"questions-{run}", Record(json.dumps(question), key=str(attempt)), source="/t"
                )
            [answer] = (await read_all(kafka_bootstrap, f"answers-{run}", 1 + attempt))[attempt:]
            value = json.loads(answer.record.value)
            assert value["question"] == "what stores vectors?"
            assert "question_embeddings" not in value
            related = value["related_documents"]
            assert [r["id"] for r in related] == [
                "https://docs.example/a2",
                "https://docs.example/a1",
                "https://docs.example/b1",
            ]
            assert related[0] == {
                "id": "https://docs.example/a2",
                "distance": 0.0,
                "text": "milvus stores vectors",
            }
            lines.append(await _asset_line(port))
    assert lines == ["docs", "docs"]
    # deletion-mode: delete drops the collection (the server of a run is gone: start one)
    from sluice.milvus import LocalMilvus

    async with LocalMilvus(tmp_path / "data" / f"milvus-{port}", port=port):
        assert await delete_assets(app) == ["documents-table: collection docs deleted"]
        assert await delete_assets(app) == ["documents-table: collection docs is not there"]


async def _until_written(port: int, count: int) -> None:
    import asyncio

    from pymilvus import AsyncMilvusClient

    client = AsyncMilvusClient(uri=f"http://127.0.0.1:{port}")
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            rows = await client.query("docs", filter="", output_fields=["count(*)"])
            if int(rows[0]["count(*)"]) >= count:
                return
            await asyncio.sleep(0.3)
        raise AssertionError("the chunks were not written within 60 s")
    finally:
        await client.close()


async def _asset_line(port: int) -> str:
    from pymilvus import AsyncMilvusClient

    client = AsyncMilvusClient(uri=f"http://127.0.0.1:{port}")
    try:
        return ",".join(await client.list_collections())
    finally:
        await client.close()


def test_the_loader_checks_the_asset_keys(tmp_path: Path) -> None:
    bad = CRAWLER.replace("{run}", "x").replace('      collection-name: "docs"\n', "", 1)
    app_dir = write(
        tmp_path / "app",
        {"configuration.yaml": CONFIGURATION.replace("{port}", "19530"), "crawler.yaml": bad},
    )
    with pytest.raises(
        InvalidApplication, match=r"assets\[0\]\.config\.collection-name: is required"
    ):
        load_application(app_dir)
