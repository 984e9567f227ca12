"""examples/rag under ``sluice run``: the documents shipped in the example are extracted, split,
embedded (all-MiniLM-L6-v2, locally) and stored in PostgreSQL with pgvector; a question on the
chat gateway gets an answer from the real local chat model (Gemma 3 270M on llama.cpp),
streamed in pieces, whose prompt holds the stored chunk most similar to the question. The
model's wording is never asserted: the retrieval is, computed here again from the stored
vectors and the same embedding model.

The example's datasource names a PostgreSQL on this machine; here it is the test session's
server (a port where something listens is left alone by ``sluice run``), with the example's
user and password and a fresh database per test."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from sluice.net import free_port
from sluice.postgres import LocalPostgres
from tests.examples.support import EXAMPLES, Example, receive_json, sluice_run
from tests.fakes.local_llm import LocalLlm
from tests.postgres import table_name
from workers.builtin.embedding_models import load_model

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "rag"
DOCUMENTS = sorted(path.name for path in (APP / "documents").iterdir())
QUESTION = "When does the ferry leave Hollin harbour?"


@dataclass(frozen=True)
class StoredChunk:
    filename: str
    chunk_id: int
    num_chunks: int
    text: str
    embeddings: list[float]


ROLE = "rag"
ROLE_PASSWORD = "rag-on-this-machine"
"""The user and password of the example's datasource (examples/rag/configuration.yaml)."""


async def example_database(server: LocalPostgres) -> dict[str, Any]:
    """A fresh database of the session's server, owned by the example's user (created once);
    psycopg's connection arguments for it, as that user."""
    name = table_name("rag")
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        found = await connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if await found.fetchone() is None:
            await connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)
                )
            )
        await connection.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(ROLE)
            )
        )
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "dbname": name,
        "user": ROLE,
        "password": ROLE_PASSWORD,
    }


async def stored_chunks(database: dict[str, Any]) -> list[StoredChunk]:
    """The rows of the example's ``documents`` table (none before it is created)."""
    async with await psycopg.AsyncConnection.connect(**database) as connection:
        exists = await connection.execute("SELECT to_regclass('documents')")
        if (await exists.fetchone()) == (None,):
            return []
        rows = await connection.execute(
            "SELECT filename, chunk_id, num_chunks, text, embeddings_vector::text FROM documents"
        )
        return [StoredChunk(f, c, n, t, json.loads(e)) for f, c, n, t, e in await rows.fetchall()]


def complete(chunks: list[StoredChunk]) -> bool:
    """Whether every document has all its chunks, 0 to its number of chunks - 1."""
    by_file: dict[str, list[StoredChunk]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk.filename, []).append(chunk)
    return sorted(by_file) == DOCUMENTS and all(
        sorted(c.chunk_id for c in file_chunks) == list(range(file_chunks[0].num_chunks))
        for file_chunks in by_file.values()
    )


async def indexed(database: dict[str, Any], within: float = 120) -> list[StoredChunk]:
    deadline = time.monotonic() + within
    while not complete(chunks := await stored_chunks(database)):
        assert time.monotonic() < deadline, f"not indexed within {within:g} s: {chunks}"
        await asyncio.sleep(0.5)
    return chunks


async def streamed_answer(chat: ClientConnection, question: str) -> list[dict[str, Any]]:
    """Asks ``question`` and returns the answer's records, up to the one marked last."""
    await chat.send(json.dumps({"value": question}))
    assert await receive_json(chat) == {"status": "OK", "reason": None}
    records: list[dict[str, Any]] = []
    while not records or records[-1]["headers"]["stream-last-message"] != "true":
        frame = await receive_json(chat, timeout=120)
        records.append(frame["record"])
    return records


def assert_streamed(records: list[dict[str, Any]], session: str) -> None:
    headers = [record["headers"] for record in records]
    assert [int(h["stream-index"]) for h in headers] == list(range(1, len(records) + 1))
    assert [h["stream-last-message"] for h in headers] == ["false"] * (len(records) - 1) + ["true"]
    assert len({h["stream-id"] for h in headers}) == 1
    assert all(h["langstream-client-session-id"] == session for h in headers)


def jdbc_url(database: dict[str, Any]) -> str:
    return f"jdbc:postgresql://localhost:{database['port']}/{database['dbname']}"


async def test_the_documents_are_indexed_and_answers_come_from_them(
    kafka_bootstrap: str, tmp_path: Path, local_llm: LocalLlm, postgres_server: LocalPostgres
) -> None:
    database = await example_database(postgres_server)
    globals_ = {
        "chat-model-url": local_llm.base_url,
        "chat-model-name": local_llm.model,
        "documents-db-url": jdbc_url(database),
    }
    async with sluice_run(APP, kafka_bootstrap, tmp_path, globals_=globals_) as running:
        assert "asset documents-table: table documents created" in running.output
        chunks = await indexed(database)
        # Every chunk has its vector: 384 floats of unit length (all-MiniLM-L6-v2).
        assert len(chunks) >= len(DOCUMENTS)
        for chunk in chunks:
            assert chunk.text.strip()
            assert len(chunk.embeddings) == 384
            assert math.isclose(math.fsum(x * x for x in chunk.embeddings), 1.0, abs_tol=1e-3)

        # The chunk most similar to the question, found here from the stored vectors.
        (question_vector,) = await asyncio.to_thread(load_model().embed, [QUESTION])
        ranked = sorted(
            chunks,
            key=lambda c: math.fsum(
                x * y for x, y in zip(c.embeddings, question_vector, strict=True)
            ),
            reverse=True,
        )
        best = ranked[0]
        assert best.filename == "ferry.txt"
        assert "07:40" in best.text  # the documents say when the ferry leaves

        async with (
            connect(running.ws_url("chat", "chat", "?param:sessionId=alice")) as chat,
            connect(running.ws_url("consume", "log", "?param:sessionId=alice")) as log,
        ):
            records = await streamed_answer(chat, QUESTION)
            entry = json.loads((await receive_json(log, timeout=60))["record"]["value"])

    assert_streamed(records, "alice")
    answer = "".join(str(record["value"]) for record in records)
    assert answer.strip()
    assert entry["answer"] == answer  # the whole answer, as it was streamed
    assert entry["question"] == QUESTION
    assert "question_embeddings" not in entry  # dropped before the log topic
    # Retrieval: the best chunk first, and its text in the prompt the model was sent.
    related = entry["related_documents"]
    assert (related[0]["filename"], related[0]["chunk_id"]) == (best.filename, best.chunk_id)
    prompt = json.loads(entry["prompt"])
    assert prompt["model"] == local_llm.model
    system, user = prompt["messages"]
    assert best.text in system["content"]
    assert user == {"role": "user", "content": QUESTION}
    # The model was already served: the example's chat-model service used it.
    assert f"[chat-model] a chat model already answers at {local_llm.base_url}" in running.output


async def wait_for_line(running: Example, text: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not any(text in line for line in running.lines):
        assert time.monotonic() < deadline, f"no line with {text!r}:\n{running.output}"
        await asyncio.sleep(0.5)


async def test_the_application_serves_the_local_model_itself(
    kafka_bootstrap: str, tmp_path: Path, local_llm_assets: Path, postgres_server: LocalPostgres
) -> None:
    """What ``make run APP=examples/rag`` does: nothing answers at the chat model's URL, so
    the example's service prepares the model with scripts/llama-test-env (built already, by
    the test session, in the same cache) and serves it there until the application stops."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    database = await example_database(postgres_server)
    async with sluice_run(
        APP,
        kafka_bootstrap,
        tmp_path,
        globals_={"chat-model-url": url, "documents-db-url": jdbc_url(database)},
        environ={"SLUICE_LLAMA_ASSETS": str(local_llm_assets)},
    ) as running:
        await wait_for_line(running, f"[chat-model] chat model gemma-3-270m serving at {url}", 120)
        async with httpx.AsyncClient() as client:
            models = (await client.get(f"{url}/models")).json()
        assert [model["id"] for model in models["data"]] == ["gemma-3-270m"]
        await indexed(database)
        async with connect(running.ws_url("chat", "chat", "?param:sessionId=bob")) as chat:
            records = await streamed_answer(chat, QUESTION)
    assert_streamed(records, "bob")
    assert "".join(str(record["value"]) for record in records).strip()
    assert "[chat-model] local chat model prepared in" in running.output
    assert "building the local chat model ONCE" not in running.output  # it was in the cache
    # The model's server stopped with the application.
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/models", timeout=2)
