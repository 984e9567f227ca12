"""Streams the pretend model's answer to the answers topic, a piece at a time.

Every piece is a record with the question's headers (session and user ids, so the chat gateway
routes it to the right socket) and three more, as LangStream's ai-chat-completions writes them:

- ``stream-id``: the same for every piece of one answer;
- ``stream-index``: 0, 1, 2... in the order of the pieces;
- ``stream-last-message``: ``"true"`` on the last piece only.

The pieces before the last are written with the topic producer as they come (each one waits for
Kafka's acknowledgement, so they arrive in order); the last one is the processor's output, so
the question's offset is committed only once the whole answer is written.
"""

from __future__ import annotations

import uuid
from typing import Any

from fake_llm import complete

from sluice import AgentContext, Processor, Record


class Assistant(Processor):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.topic = config.get("stream-to-topic", "chat-answers")
        self.delay = float(config.get("word-delay", 0.15))
        self.producer = context.get_topic_producer()

    async def process(self, record: Record) -> Record:
        question = record.value if isinstance(record.value, str) else str(record.value)
        stream_id = str(uuid.uuid4())
        index, previous = 0, None
        async for piece in complete(question, delay=self.delay):
            if previous is not None:
                piece_record = self._piece(record, previous, stream_id, index, last=False)
                await self.producer.awrite(self.topic, piece_record)
                index += 1
            previous = piece
        return self._piece(record, previous or "", stream_id, index, last=True)

    @staticmethod
    def _piece(question: Record, text: str, stream_id: str, index: int, *, last: bool) -> Record:
        headers = {
            **question.headers,
            "stream-id": stream_id,
            "stream-index": str(index),
            "stream-last-message": "true" if last else "false",
        }
        return Record(text, headers=headers)
