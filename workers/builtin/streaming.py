"""Streaming an answer piece by piece: LangStream's grouping of pieces into chunk records.

The agents that stream an answer to ``stream-to-topic`` (``langserve-invoke``,
``ai-chat-completions``, ``ai-text-completions``) group the pieces the same way, so a chat
client sees the first piece at once and then chunks that grow: 1, 2, 4, ... pieces, up to
``min-chunks-per-message``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sluice.record import Record
from workers.builtin.records import WorkingRecord, set_field, to_record

__all__ = ["ChunkGrouper", "chunk_record"]


@dataclass
class ChunkGrouper:
    """LangStream's grouping of streamed pieces into chunk records (sans I/O).

    Non-empty pieces collect in a buffer; when it holds ``size`` pieces, or on the last event,
    it is flushed as one chunk and ``size`` doubles up to ``limit``: 1, 2, 4, 8, 16, 20, 20...

    >>> grouper = ChunkGrouper(limit=3)
    >>> [grouper.add(piece) for piece in ["A", " car", " is", " a", " vehicle"]]
    [(1, 'A', False), None, (2, ' car is', False), None, None]
    >>> grouper.add("", last=True), grouper.answer
    ((3, ' a vehicle', True), 'A car is a vehicle')
    """

    limit: int
    size: int = 1
    index: int = 0
    buffer: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)

    def add(self, piece: str, last: bool = False) -> tuple[int, str, bool] | None:
        """Take one piece; a (index, chunk text, last) tuple when a chunk is due."""
        if piece:
            self.buffer.append(piece)
            self.pieces.append(piece)
        if len(self.buffer) < self.size and not last:
            return None
        self.size = min(self.size * 2, self.limit)
        self.index += 1
        chunk = "".join(self.buffer)
        self.buffer.clear()
        return self.index, chunk, last

    @property
    def answer(self) -> str:
        """Every piece so far, joined."""
        return "".join(self.pieces)


def chunk_record(
    working: WorkingRecord,
    record: Record,
    chunk: tuple[int, str, bool],
    *,
    stream_id: str,
    field_name: str,
) -> Record:
    """The record of one chunk: a copy of ``working`` (the input, before the answer is written)
    with the chunk's text written to ``field_name`` and the headers ``stream-id``,
    ``stream-index`` and ``stream-last-message`` added; the input's own headers are kept."""
    index, text, last = chunk
    copied = WorkingRecord(
        value=copy.deepcopy(working.value),
        key=copy.deepcopy(working.key),
        properties=dict(working.properties),
        topic=working.topic,
        event_time=working.event_time,
        value_form=working.value_form,
        key_form=working.key_form,
    )
    set_field(copied, text, field_name)
    copied.properties.update(
        {
            "stream-id": stream_id,
            "stream-index": str(index),
            "stream-last-message": "true" if last else "false",
        }
    )
    return to_record(copied, record)
