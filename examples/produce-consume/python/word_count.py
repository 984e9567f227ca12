"""Adds the number of words to each text. The session header travels to the output by itself:
the runtime carries input headers to the outputs."""

from __future__ import annotations

from sluice import Processor, Record


class WordCount(Processor):
    def process(self, record: Record) -> Record:
        text = record.value if isinstance(record.value, str) else str(record.value)
        return record.with_value({"text": text, "words": len(text.split())})
