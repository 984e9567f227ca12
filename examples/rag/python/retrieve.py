"""The retrieval step of the chat pipeline, in place of LangStream's ``query-vector-db``: the
chunks most similar to the question's embeddings, from the store the ``index`` sink writes.

The question arrives as ``{"question": ..., "question_embeddings": [...]}`` (``document-to-json``
then ``compute-ai-embeddings``); it leaves with ``related_documents``, best first, each
``{"filename", "chunk_id", "text", "similarity"}``, which the prompt template lists.

The store is found in the ``index`` agent's state directory, the sibling of this agent's own
(``store.py`` says why). It is read again for each question, so documents indexed after the
start are found at once; before the first one is indexed the list is empty.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from store import FILE_NAME, Chunk, all_chunks, connect, search

from sluice import AgentContext, Processor, Record


class Retrieve(Processor):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        own = context.get_persistent_state_directory()
        if own is None:
            raise ValueError(
                f"agent {context.agent_id} needs resources.disk: the store is found beside "
                "its state directory"
            )
        self.path = Path(own).parent / str(config.get("index-agent", "index")) / FILE_NAME
        self.top_k = int(config.get("top-k", 3))
        self.field = str(config.get("embeddings-field", "question_embeddings"))
        self.output = str(config.get("output-field", "related_documents"))
        self.connection: sqlite3.Connection | None = None

    def process(self, record: Record) -> Record:
        value = record.value
        question = json.loads(value) if isinstance(value, str | bytes) else dict(value)
        matches = search(self._chunks(), question[self.field], self.top_k)
        question[self.output] = [
            {
                "filename": match.chunk.filename,
                "chunk_id": match.chunk.chunk_id,
                "text": match.chunk.text,
                "similarity": round(match.similarity, 4),
            }
            for match in matches
        ]
        return record.with_value(json.dumps(question, ensure_ascii=False))

    def _chunks(self) -> list[Chunk]:
        if self.connection is None:
            if not self.path.exists():
                return []  # nothing indexed yet
            self.connection = connect(self.path)
        return all_chunks(self.connection)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
