"""The sink at the end of the ingestion pipeline: each chunk, with its embeddings, into the
store (``store.py``), in this agent's persistent state directory."""

from __future__ import annotations

import json
from typing import Any

from store import Chunk, connect, save, store_path

from sluice import AgentContext, Record, Sink


class Index(Sink):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        directory = context.get_persistent_state_directory()
        if directory is None:
            raise ValueError(f"agent {context.agent_id} needs resources.disk for its store")
        self.path = store_path(directory)
        self.connection = connect(self.path)

    def write(self, record: Record) -> None:
        value = record.value
        chunk = json.loads(value) if isinstance(value, str | bytes) else value
        save(
            self.connection,
            Chunk(
                filename=str(chunk["filename"]),
                chunk_id=int(chunk["chunk_id"]),
                num_chunks=int(chunk["num_chunks"]),
                num_tokens=chunk.get("num_tokens"),
                text=str(chunk["text"]),
                embeddings=[float(x) for x in chunk["embeddings"]],
            ),
        )
        if chunk["chunk_id"] == chunk["num_chunks"] - 1:
            print(f"indexed {chunk['filename']}: {chunk['num_chunks']} chunks", flush=True)

    def close(self) -> None:
        self.connection.close()
