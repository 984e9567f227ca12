"""LangStream's ``webcrawler-source`` example under ``sluice run``: a web site crawled, its chunks
embedded and written to an Astra database, and a chat bot answering from them through its
gateways. The YAML files are written here with exactly the example's agent types, keys, CQL,
asset and gateways; only the secrets point elsewhere:

- ``astra``: the fake Astra (:mod:`tests.fakes.astra_devops_server`) in front of the session's
  Cassandra node. Like the example's secrets, they give everything: ``secureBundle`` (the fake's
  bundle, base64) and ``database`` / ``token`` / ``environment`` (the fake's DevOps API). As in
  LangStream's datasource, the bundle given wins: the DevOps API is never called, and every
  session goes through the bundle's metadata service and TLS to the node (the cloud path).
  The keyspace ``documents`` is made by the test beforehand, as it exists on Astra (the example
  creates only the table).
- ``open-ai``: the fake OpenAI server (provider ``openai``), whose ``text-embedding-ada-002``
  vectors have 1536 numbers (the table's ``VECTOR<FLOAT, 1536>``), deterministic.
- The crawler's seed ``https://docs.langstream.ai/`` is served by :class:`LocalInternet`
  through its proxy (the site of ``test_langstream_chatbot``).

Retrieval is asserted on the requests the fake OpenAI received, never on an answer's wording.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.cassandra.server import (
    PASSWORD,
    USER,
    LocalCassandra,
    cassandra_resource,
    session_certificates,
)
from tests.examples.support import receive_json, sluice_run
from tests.examples.test_langstream_chatbot import PAGES, QUESTION, SITE, site
from tests.fakes.astra_devops_server import FakeAstraDevops
from tests.fakes.internet import LocalInternet
from tests.fakes.openai_server import FakeOpenAI, fake_embedding
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings
from workers.builtin.datasources.errors import DataSourceError

pytestmark = [
    pytest.mark.kafka,
    # The driver's cloud module builds its TLS context with ssl.PROTOCOL_TLS (deprecated).
    pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning"),
]

EMBEDDINGS_MODEL = "text-embedding-ada-002"

CONFIGURATION = """
configuration:
  resources:
  - type: "open-ai-configuration"
    name: "OpenAI Azure configuration"
    configuration:
      url: "${secrets.open-ai.url}"
      access-key: "${secrets.open-ai.access-key}"
      provider: "${secrets.open-ai.provider}"
  - type: "datasource"
    name: "AstraDatasource"
    configuration:
      service: "astra"
      clientId: "token"
      secret: "${secrets.astra.token}"
      secureBundle: "${secrets.astra.secureBundle}"
      database: "${secrets.astra.database}"
      token: "${secrets.astra.token}"
      environment: "${secrets.astra.environment}"
"""

CRAWLER = """
name: "Crawl a website"
topics:
  - name: "chunks-topic"
    creation-mode: create-if-not-exists
resources:
      size: 2
pipeline:
  - name: "Crawl the WebSite"
    type: "webcrawler-source"
    configuration:
      seed-urls: ["https://docs.langstream.ai/"]
      allowed-domains: ["https://docs.langstream.ai"]
      forbidden-paths: []
      min-time-between-requests: 500
      reindex-interval-seconds: 3600
      max-error-count: 5
      max-urls: 1000
      max-depth: 50
      handle-robots-file: true
      user-agent: ""
      scan-html-documents: true
      http-timeout: 10000
      handle-cookies: true
      max-unflushed-pages: 100
      state-storage: disk
  - name: "Extract text"
    type: "text-extractor"
  - name: "Normalise text"
    type: "text-normaliser"
    configuration:
      make-lowercase: true
      trim-spaces: true
  - name: "Detect language"
    type: "language-detector"
    configuration:
      property: "language"
  - name: "Split into chunks"
    type: "text-splitter"
    configuration:
      splitter_type: "RecursiveCharacterTextSplitter"
      chunk_size: 400
      separators: ["\\n\\n", "\\n", " ", ""]
      keep_separator: false
      chunk_overlap: 100
      length_function: "cl100k_base"
  - name: "Convert to structured data"
    type: "document-to-json"
    configuration:
      text-field: text
      copy-properties: true
  - name: "prepare-structure"
    type: "compute"
    configuration:
      fields:
        - name: "value.filename"
          expression: "properties.url"
          type: STRING
        - name: "value.chunk_id"
          expression: "properties.chunk_id"
          type: STRING
        - name: "value.language"
          expression: "properties.language"
          type: STRING
        - name: "value.chunk_num_tokens"
          expression: "properties.chunk_num_tokens"
          type: STRING
  - name: "compute-embeddings"
    id: "step1"
    type: "compute-ai-embeddings"
    output: "chunks-topic"
    configuration:
      model: "${secrets.open-ai.embeddings-model}"
      embeddings-field: "value.embeddings_vector"
      text: "{{ value.text }}"
      batch-size: 10
      flush-interval: 500
"""

WRITE_TO_ASTRA = """
name: "Write to AstraDB"
topics:
  - name: "chunks-topic"
    creation-mode: create-if-not-exists
assets:
  - name: "documents-table"
    asset-type: "cassandra-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "documents"
      keyspace: "documents"
      datasource: "AstraDatasource"
      create-statements:
        - |
          CREATE TABLE IF NOT EXISTS documents.documents (
          filename TEXT,
          chunk_id int,
          num_tokens int,
          language TEXT,
          text TEXT,
          embeddings_vector VECTOR<FLOAT, 1536>,
          PRIMARY KEY (filename, chunk_id));
        - |
          CREATE CUSTOM INDEX IF NOT EXISTS documents_ann_index ON documents.documents(embeddings_vector) USING 'StorageAttachedIndex';
pipeline:
  - name: "Delete stale chunks"
    input: "chunks-topic"
    type: "query"
    configuration:
      datasource: "AstraDatasource"
      when: "fn:toInt(properties.text_num_chunks) == (fn:toInt(properties.chunk_id) + 1)"
      mode: "execute"
      query: "DELETE FROM documents.documents WHERE filename = ? AND chunk_id > ?"
      output-field: "value.delete_results"
      fields:
        - "value.filename"
        - "fn:toInt(value.chunk_id)"
  - name: "Write to Astra"
    type: "vector-db-sink"
    resources:
      size: 2
    configuration:
      datasource: "AstraDatasource"
      table-name: "documents"
      keyspace: "documents"
      mapping: "filename=value.filename, chunk_id=value.chunk_id, language=value.language, text=value.text, embeddings_vector=value.embeddings_vector, num_tokens=value.chunk_num_tokens"
"""

CHATBOT = """
topics:
  - name: "questions-topic"
    creation-mode: create-if-not-exists
  - name: "answers-topic"
    creation-mode: create-if-not-exists
  - name: "log-topic"
    creation-mode: create-if-not-exists
errors:
    on-failure: "skip"
pipeline:
  - name: "convert-to-structure"
    type: "document-to-json"
    input: "questions-topic"
    configuration:
      text-field: "question"
  - name: "compute-embeddings"
    type: "compute-ai-embeddings"
    configuration:
      model: "${secrets.open-ai.embeddings-model}"
      embeddings-field: "value.question_embeddings"
      text: "{{ value.question }}"
      flush-interval: 0
  - name: "lookup-related-documents"
    type: "query"
    configuration:
      datasource: "AstraDatasource"
      query: "SELECT text,embeddings_vector FROM documents.documents ORDER BY embeddings_vector ANN OF ? LIMIT 20"
      fields:
        - "value.question_embeddings"
      output-field: "value.related_documents"
  - name: "re-rank documents with MMR"
    type: "re-rank"
    configuration:
      max: 5
      field: "value.related_documents"
      query-text: "value.question"
      query-embeddings: "value.question_embeddings"
      output-field: "value.related_documents"
      text-field: "record.text"
      embeddings-field: "record.embeddings_vector.values"
      algorithm: "MMR"
      lambda: 0.5
      k1: 1.2
      b: 0.75
  - name: "ai-chat-completions"
    type: "ai-chat-completions"
    configuration:
      model: "${secrets.open-ai.chat-completions-model}"
      completion-field: "value.answer"
      log-field: "value.prompt"
      stream-to-topic: "answers-topic"
      stream-response-completion-field: "value"
      min-chunks-per-message: 20
      messages:
        - role: system
          content: |
              Answer the question about the crawled site from the documents below.
              Say so when they do not hold the answer.

              Documents:
              {{# value.related_documents}}
              {{ text}}
              {{/ value.related_documents}}
        - role: user
          content: "{{ value.question}}"
  - name: "cleanup-response"
    type: "drop-fields"
    output: "log-topic"
    configuration:
      fields:
        - "question_embeddings"
        - "related_documents"
"""

GATEWAYS = """
gateways:
  - id: "user-input"
    type: produce
    topic: "questions-topic"
    parameters:
      - sessionId
    produceOptions:
      headers:
        - key: langstream-client-session-id
          valueFromParameters: sessionId

  - id: "bot-output"
    type: consume
    topic: "answers-topic"
    parameters:
      - sessionId
    consumeOptions:
      filters:
        headers:
          - key: langstream-client-session-id
            valueFromParameters: sessionId


  - id: "llm-debug"
    type: consume
    topic: "log-topic"
"""


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedding_dimensions={EMBEDDINGS_MODEL: 1536}) as server:
        yield server


@pytest.fixture
def astra(cassandra_server: LocalCassandra) -> Iterator[FakeAstraDevops]:
    with FakeAstraDevops(cassandra_server, session_certificates(), (USER, PASSWORD)) as fake:
        yield fake


def application(tmp_path: Path) -> Path:
    app = tmp_path / "webcrawler-source"
    app.mkdir()
    for name, text in (
        ("configuration.yaml", CONFIGURATION),
        ("crawler.yaml", CRAWLER),
        ("write-to-astra.yaml", WRITE_TO_ASTRA),
        ("chatbot.yaml", CHATBOT),
        ("gateways.yaml", GATEWAYS),
    ):
        (app / name).write_text(text.lstrip())
    return app


def secrets_file(tmp_path: Path, astra: FakeAstraDevops, openai: FakeOpenAI) -> Path:
    """The secrets the example reads, as LangStream's examples/secrets/secrets.yaml lists them."""
    secrets = {
        "astra": {
            "clientId": "",
            "secret": "",
            "token": astra.token,
            "database": astra.name,
            "secureBundle": "base64:" + base64.b64encode(astra.bundle()).decode("ascii"),
            "environment": astra.api_url,
        },
        "open-ai": {
            "url": openai.base_url,
            "access-key": "sk-webcrawler",
            "provider": "openai",
            "embeddings-model": EMBEDDINGS_MODEL,
            "chat-completions-model": "gpt-webcrawler",
        },
    }
    path = tmp_path / "secrets.yaml"
    entries = [{"id": ident, "data": data} for ident, data in secrets.items()]
    path.write_text(json.dumps({"secrets": entries}, indent=2))
    return path


@asynccontextmanager
async def cql(node: LocalCassandra) -> AsyncIterator[CassandraDataSource]:
    """A session of plain CQL on ``node`` as the test's superuser."""
    source = CassandraDataSource("test", cassandra_settings("test", cassandra_resource(node)))
    await source.start()
    try:
        yield source
    finally:
        await source.close()


async def crawled(
    node: LocalCassandra, output: Callable[[], str], within: float = 120
) -> dict[str, dict[str, Any]]:
    """The rows of ``documents.documents`` by page, once every page of the site is there
    (else what ``sluice run`` printed, ``output()``, is the failure's message)."""
    wanted = {f"https://{SITE}/"} | {f"https://{SITE}/{name}" for name in PAGES}
    deadline = time.monotonic() + within
    async with cql(node) as session:
        while True:
            try:
                rows = await session.fetch(
                    "SELECT filename, chunk_id, num_tokens, language, text, embeddings_vector "
                    "FROM documents.documents",
                    [],
                )
            except DataSourceError:
                rows = []  # the table is not made yet
            by_page = {row["filename"]: row for row in rows}
            if set(by_page) == wanted:
                return by_page
            assert time.monotonic() < deadline, (
                f"not crawled within {within:g} s: {sorted(by_page)}\n{output()}"
            )
            await asyncio.sleep(0.5)


def test_the_fake_answers_the_models_dimensions() -> None:
    """ada-002 as OpenAI sizes it (the table's 1536), ``dimensions`` when asked, else 8; the
    first 8 numbers are the same whatever the size."""
    with FakeOpenAI(embedding_dimensions={EMBEDDINGS_MODEL: 1536}) as openai:
        headers = {"Authorization": "Bearer sk-test"}
        url = f"{openai.base_url}/embeddings"

        def vector(**body: Any) -> list[float]:
            answer = httpx.post(url, json={"input": "a cat", **body}, headers=headers)
            assert answer.status_code == 200, answer.text
            return answer.json()["data"][0]["embedding"]  # type: ignore[no-any-return]

        ada = vector(model=EMBEDDINGS_MODEL)
        assert len(ada) == 1536
        assert ada == fake_embedding("a cat", 1536)
        assert len(set(ada)) > 200  # not a repeated block
        assert vector(model="text-embedding-3-small", dimensions=64) == ada[:64]
        assert vector(model="other") == ada[:8] == fake_embedding("a cat")


async def test_the_crawled_site_answers_questions_through_the_gateways(
    kafka_bootstrap: str,
    tmp_path: Path,
    cassandra_server: LocalCassandra,
    astra: FakeAstraDevops,
    fake_openai: FakeOpenAI,
) -> None:
    # The keyspace exists on the Astra database; the table is the application's to make.
    async with cql(cassandra_server) as session:
        await session.run(
            "CREATE KEYSPACE IF NOT EXISTS documents WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            [],
        )
        await session.run("DROP TABLE IF EXISTS documents.documents", [])
    app = application(tmp_path)
    secrets = secrets_file(tmp_path, astra, fake_openai)
    others: list[Any] = []
    with LocalInternet({SITE: site}, tmp_path) as internet:
        async with sluice_run(
            app, kafka_bootstrap, tmp_path, ["-s", str(secrets)], environ=internet.env
        ) as running:
            rows = await crawled(cassandra_server, lambda: running.output)
            async with (
                connect(running.ws_url("consume", "bot-output", "?param:sessionId=bob")) as bob,
                connect(running.ws_url("consume", "bot-output", "?param:sessionId=ann")) as ann,
                connect(running.ws_url("produce", "user-input", "?param:sessionId=ann")) as ask,
            ):
                await ask.send(json.dumps({"value": QUESTION}))
                assert await receive_json(ask) == {"status": "OK", "reason": None}
                records: list[dict[str, Any]] = []
                while not records or records[-1]["headers"]["stream-last-message"] != "true":
                    records.append((await receive_json(ann, timeout=60))["record"])
                # Another session's consumer gets none of it.
                with suppress(TimeoutError):
                    others.append(await receive_json(bob, timeout=1))

    # Every page crawled through the proxy, one chunk each, in the table with its 1536 floats.
    assert {r.path for r in internet.requests} >= {"/robots.txt", "/", *(f"/{p}" for p in PAGES)}
    assert {row["chunk_id"] for row in rows.values()} == {0}
    ferry = rows[f"https://{SITE}/ferry.html"]
    assert "07:40" in ferry["text"]
    assert ferry["text"] == ferry["text"].lower()
    assert ferry["language"] == "en"
    assert ferry["num_tokens"] > 0
    assert ferry["embeddings_vector"] == pytest.approx(fake_embedding(ferry["text"], 1536))

    # Through the bundle given (it wins over database + token, as in LangStream): the DevOps
    # API was never called; the sessions asked the bundle's metadata service where the node is.
    assert astra.requests == []
    assert astra.metadata.served

    # The answer streamed in several records of one stream, to this session only.
    headers = [record["headers"] for record in records]
    assert len(records) > 1
    assert [int(h["stream-index"]) for h in headers] == list(range(1, len(records) + 1))
    assert all(h["langstream-client-session-id"] == "ann" for h in headers)
    assert "".join(str(record["value"]) for record in records).strip()
    assert others == []

    # Retrieval: the question embedded with the example's model, and the prompt held the ferry
    # page (the one with the question's words) among the 5 documents re-rank kept of the 9.
    embedded = [r for r in fake_openai.requests if r.path.endswith("/embeddings")]
    assert {r.body["model"] for r in embedded} == {EMBEDDINGS_MODEL}
    assert [QUESTION] in [r.body["input"] for r in embedded]
    (chat,) = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert chat.body["model"] == "gpt-webcrawler"
    assert chat.body["stream"] is True
    system, user = chat.body["messages"]
    assert user == {"role": "user", "content": QUESTION}
    assert "Documents:" in system["content"]
    assert ferry["text"] in system["content"]
    prompted = [row["text"] for row in rows.values() if row["text"] in system["content"]]
    assert len(prompted) == 5
