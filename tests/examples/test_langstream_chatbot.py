"""A chat bot over a crawled web site in the shape of LangStream's ``docker-chatbot`` example,
under ``sluice run``: the same agent types, keys, SQL, asset and gateways, written here, with only
the secrets pointing elsewhere.

The example was written for HerdDB: its datasource says ``driverClass: herddb.jdbc.Driver``, its
table has a ``FLOATA`` column and its search orders by ``cosine_similarity(embeddings_vector,
CAST(? as FLOAT ARRAY))``. Here its secrets give a ``jdbc:postgresql:`` URL (the URL chooses the
database) of the session's PostgreSQL, which has HerdDB's ``floata`` and ``cosine_similarity``.
The crawler's seed is ``https://docs.langstream.ai/``, served by :class:`LocalInternet` through
its proxy; the embeddings and the chat model are the fake OpenAI server's (its vectors and its
answer are deterministic), so retrieval is asserted on the requests it received, never on an
answer's wording.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from websockets.asyncio.client import connect

from sluice.postgres import LocalPostgres
from tests.examples.support import receive_json, sluice_run
from tests.fakes.internet import Answer, Exchange, LocalInternet
from tests.fakes.openai_server import FakeOpenAI
from tests.postgres import PASSWORD, table_name

pytestmark = pytest.mark.kafka

SITE = "docs.langstream.ai"
QUESTION = "when does the first ferry leave hollin harbour"
"""Lowercase, as the stored text is (the crawler's text-normaliser lowercases it), so that the
re-rank agent's BM25 finds the question's words in the ferry page only."""

PAGES = {
    "ferry.html": "Ferry timetable. The first ferry leaves Hollin harbour at 07:40 on weekdays.",
    "lighthouse.html": "The lighthouse on the northern cape is open to visitors in summer.",
    "market.html": "The fish market sells its catch on the quay every Saturday morning.",
    "library.html": "The town library lends books, maps and old newspapers to residents.",
    "bakery.html": "The bakery near the church bakes rye bread and cinnamon buns daily.",
    "museum.html": "The maritime museum shows ship models, anchors and a diving suit.",
    "garden.html": "The botanical garden grows palms in a glass house heated all year.",
    "bridge.html": "The stone bridge over the river was rebuilt after a flood in 1902.",
}


def site(request: Exchange) -> Answer:
    """The crawled site: an index linking every page, the pages, a robots.txt allowing all."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    if request.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"
    if request.path == "/":
        links = "".join(f'<li><a href="/{name}">Page {n}</a></li>' for n, name in enumerate(PAGES))
        body = f"<html><head><title>Index</title></head><body><ul>{links}</ul></body></html>"
        return 200, html, body.encode()
    name = request.path.lstrip("/")
    if name in PAGES:
        body = f"<html><head><title>{name}</title></head><body><p>{PAGES[name]}</p></body></html>"
        return 200, html, body.encode()
    return 404, {"Content-Type": "text/plain"}, b"not found"


CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "JdbcDatasource"
      configuration:
        service: "jdbc"
        driverClass: "herddb.jdbc.Driver"
        url: "${secrets.herddb.url}"
        user: "${secrets.herddb.user}"
        password: "${secrets.herddb.password}"
    - type: "open-ai-configuration"
      name: "OpenAI Azure configuration"
      configuration:
        url: "${secrets.open-ai.url}"
        access-key: "${secrets.open-ai.access-key}"
        provider: "${secrets.open-ai.provider}"
"""

CRAWLER = """
name: "Crawl a website"
assets:
  - name: "documents-table"
    asset-type: "jdbc-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "documents"
      datasource: "JdbcDatasource"
      create-statements:
        - |
          CREATE TABLE documents (
          filename TEXT,
          chunk_id int,
          num_tokens int,
          lang TEXT,
          text TEXT,
          embeddings_vector FLOATA,
          PRIMARY KEY (filename, chunk_id));
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
      max-error-count: 5
      max-urls: 1000
      max-depth: 50
      handle-robots-file: true
      scan-html-documents: true
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
    configuration:
      model: "text-embedding-ada-002"
      embeddings-field: "value.embeddings_vector"
      text: "{{ value.text }}"
      batch-size: 10
      flush-interval: 500
  - name: "Delete stale chunks"
    type: "query"
    configuration:
      datasource: "JdbcDatasource"
      when: "fn:toInt(properties.text_num_chunks) == (fn:toInt(properties.chunk_id) + 1)"
      mode: "execute"
      query: "DELETE FROM documents WHERE filename = ? AND chunk_id > ?"
      output-field: "value.delete-results"
      fields:
        - "value.filename"
        - "fn:toInt(value.chunk_id)"
  - name: "Write"
    type: "vector-db-sink"
    configuration:
      datasource: "JdbcDatasource"
      table-name: "documents"
      fields:
        - name: "filename"
          expression: "value.filename"
          primary-key: true
        - name: "chunk_id"
          expression: "value.chunk_id"
          primary-key: true
        - name: "embeddings_vector"
          expression: "fn:toListOfFloat(value.embeddings_vector)"
        - name: "lang"
          expression: "value.language"
        - name: "text"
          expression: "value.text"
        - name: "num_tokens"
          expression: "value.chunk_num_tokens"
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
    id: "chatbot"
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
    type: "query-vector-db"
    configuration:
      datasource: "JdbcDatasource"
      query: "SELECT text,embeddings_vector FROM documents ORDER BY cosine_similarity(embeddings_vector, CAST(? as FLOAT ARRAY)) DESC LIMIT 20"
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
      embeddings-field: "record.embeddings_vector"
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
              The documents below may help you in answering the user's questions.

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
    with FakeOpenAI() as server:
        yield server


def application(tmp_path: Path) -> Path:
    app = tmp_path / "docker-chatbot"
    app.mkdir()
    for name, text in (
        ("configuration.yaml", CONFIGURATION),
        ("crawler.yaml", CRAWLER),
        ("chatbot.yaml", CHATBOT),
        ("gateways.yaml", GATEWAYS),
    ):
        (app / name).write_text(text.lstrip())
    return app


def secrets_file(tmp_path: Path, jdbc_url: str, openai: FakeOpenAI) -> Path:
    """The secrets, as LangStream's examples/secrets/secrets.yaml lists them."""
    secrets = {
        "herddb": {"url": jdbc_url, "user": "postgres", "password": PASSWORD},
        "open-ai": {
            "url": openai.base_url,
            "access-key": "sk-chatbot",
            "provider": "openai",
            "embeddings-model": "text-embedding-ada-002",
            "chat-completions-model": "gpt-chatbot",
        },
    }
    path = tmp_path / "secrets.yaml"
    entries = [{"id": ident, "data": data} for ident, data in secrets.items()]
    path.write_text(json.dumps({"secrets": entries}, indent=2))
    return path


async def fresh_database(server: LocalPostgres) -> dict[str, Any]:
    """A new database of the session's server (made from template1: floata and
    cosine_similarity are there); psycopg's connection arguments for it."""
    name = table_name("chatbot")
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        await connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return {**server.connection_arguments(), "dbname": name}


async def stored(database: dict[str, Any]) -> dict[str, tuple[int, str, int]]:
    """The ``documents`` rows by page: (chunk_id, text, number of floats in the vector)."""
    async with await psycopg.AsyncConnection.connect(**database) as connection:
        exists = await connection.execute("SELECT to_regclass('documents')")
        if (await exists.fetchone()) == (None,):
            return {}
        rows = await connection.execute(
            "SELECT filename, chunk_id, text, cardinality(embeddings_vector) FROM documents"
        )
        return {f: (c, t, n) for f, c, t, n in await rows.fetchall()}


async def crawled(database: dict[str, Any], within: float = 120) -> dict[str, tuple[int, str, int]]:
    wanted = {f"https://{SITE}/"} | {f"https://{SITE}/{name}" for name in PAGES}
    deadline = time.monotonic() + within
    while set(rows := await stored(database)) != wanted:
        assert time.monotonic() < deadline, f"not crawled within {within:g} s: {sorted(rows)}"
        await asyncio.sleep(0.5)
    return rows


async def test_the_crawled_site_answers_questions_through_the_gateways(
    kafka_bootstrap: str, tmp_path: Path, postgres_server: LocalPostgres, fake_openai: FakeOpenAI
) -> None:
    database = await fresh_database(postgres_server)
    jdbc_url = f"jdbc:postgresql://localhost:{postgres_server.port}/{database['dbname']}"
    app = application(tmp_path)
    secrets = secrets_file(tmp_path, jdbc_url, fake_openai)
    with LocalInternet({SITE: site}, tmp_path) as internet:
        async with sluice_run(
            app, kafka_bootstrap, tmp_path, ["-s", str(secrets)], environ=internet.env
        ) as running:
            rows = await crawled(database)
            session = "?param:sessionId=ann"
            async with (
                connect(running.ws_url("consume", "bot-output", session)) as answers,
                connect(running.ws_url("produce", "user-input", session)) as questions,
            ):
                await questions.send(json.dumps({"value": QUESTION}))
                assert await receive_json(questions) == {"status": "OK", "reason": None}
                records: list[dict[str, Any]] = []
                while not records or records[-1]["headers"]["stream-last-message"] != "true":
                    records.append((await receive_json(answers, timeout=60))["record"])

    # Every page crawled through the proxy, one chunk each, with its 8-float vector.
    assert {r.path for r in internet.requests} >= {"/robots.txt", "/", *(f"/{p}" for p in PAGES)}
    assert {chunk for chunk, _, _ in rows.values()} == {0}
    assert {floats for _, _, floats in rows.values()} == {8}
    ferry_text = rows[f"https://{SITE}/ferry.html"][1]
    assert "07:40" in ferry_text
    assert ferry_text == ferry_text.lower()

    # The answer streamed in several records of one stream, for this session only.
    headers = [record["headers"] for record in records]
    assert len(records) > 1
    assert [int(h["stream-index"]) for h in headers] == list(range(1, len(records) + 1))
    assert all(h["langstream-client-session-id"] == "ann" for h in headers)
    assert "".join(str(record["value"]) for record in records).strip()

    # Retrieval: the question was embedded, and the prompt held the ferry page (the one with
    # the question's words) among the 5 documents re-rank kept of the 9 stored.
    embedded = [r for r in fake_openai.requests if r.path.endswith("/embeddings")]
    assert [QUESTION] in [r.body["input"] for r in embedded]
    (chat,) = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert chat.body["model"] == "gpt-chatbot"
    system, user = chat.body["messages"]
    assert user == {"role": "user", "content": QUESTION}
    assert ferry_text in system["content"]
    prompted = [text for _, text, _ in rows.values() if text in system["content"]]
    assert len(prompted) == 5
