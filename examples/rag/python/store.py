"""The vector store of this example: one SQLite file of chunks and their embeddings.

It stands in for a vector database (LangStream's ``vector-db-sink`` and ``query-vector-db``
over PostgreSQL with pgvector, Astra, Milvus...; Sluice does not run those agents yet). The
``index`` sink writes the file in its persistent state directory, and the ``retrieve``
processor, in another worker process, reads it from there: under ``sluice run`` the state
directories of one application are siblings (``<state-dir>/<tenant>/<application>/<agent-id>``).
On Kubernetes each agent gets a volume of its own, so this store works on one machine only.

A vector is the JSON list of floats ``compute-ai-embeddings`` wrote; all-MiniLM-L6-v2's vectors
are normalised, so their dot product is the cosine similarity. A search reads every row, which is
what a few hundred chunks need; a real vector database indexes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "chunks.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    filename TEXT NOT NULL,
    chunk_id INTEGER NOT NULL,
    num_chunks INTEGER NOT NULL,
    num_tokens INTEGER,
    text TEXT NOT NULL,
    embeddings TEXT NOT NULL,
    PRIMARY KEY (filename, chunk_id)
)
"""


@dataclass(frozen=True)
class Chunk:
    filename: str
    chunk_id: int
    num_chunks: int
    num_tokens: int | None
    text: str
    embeddings: list[float]


@dataclass(frozen=True)
class Match:
    chunk: Chunk
    similarity: float


def store_path(state_directory: str | Path) -> Path:
    return Path(state_directory) / FILE_NAME


def connect(path: Path) -> sqlite3.Connection:
    # The runtime runs blocking hooks in a worker thread, not always the same one.
    connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
    # WAL: the retriever reads while the sink writes, neither waiting for the other.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(_SCHEMA)
    return connection


def save(connection: sqlite3.Connection, chunk: Chunk) -> None:
    """Writes ``chunk`` in place of the same file's chunk of that number; on a file's last
    chunk, drops the chunks an older, longer version of the file left behind."""
    with connection:
        connection.execute(
            "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            (
                chunk.filename,
                chunk.chunk_id,
                chunk.num_chunks,
                chunk.num_tokens,
                chunk.text,
                json.dumps(chunk.embeddings),
            ),
        )
        if chunk.chunk_id == chunk.num_chunks - 1:
            connection.execute(
                "DELETE FROM chunks WHERE filename = ? AND chunk_id >= ?",
                (chunk.filename, chunk.num_chunks),
            )


def all_chunks(connection: sqlite3.Connection) -> list[Chunk]:
    rows = connection.execute(
        "SELECT filename, chunk_id, num_chunks, num_tokens, text, embeddings FROM chunks "
        "ORDER BY filename, chunk_id"
    )
    return [
        Chunk(filename, chunk_id, num_chunks, num_tokens, text, json.loads(embeddings))
        for filename, chunk_id, num_chunks, num_tokens, text, embeddings in rows
    ]


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def search(chunks: Sequence[Chunk], query: Sequence[float], top_k: int) -> list[Match]:
    """The ``top_k`` chunks most similar to ``query``, best first."""
    matches = [Match(chunk, similarity(chunk.embeddings, query)) for chunk in chunks]
    matches.sort(key=lambda match: match.similarity, reverse=True)
    return matches[:top_k]
