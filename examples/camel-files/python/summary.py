"""Turns a file's record (the key is its name, the value its bytes) into a small summary."""

from __future__ import annotations

from sluice import Processor, Record


class Summary(Processor):
    def process(self, record: Record) -> Record:
        data = record.value if isinstance(record.value, bytes) else str(record.value).encode()
        text = data.decode("utf-8", errors="replace")
        return Record(
            {
                "file": record.key,
                "bytes": len(data),
                "lines": len(text.splitlines()),
                "words": len(text.split()),
                "first line": text.splitlines()[0] if text.strip() else "",
            },
            key=record.key,
        )
