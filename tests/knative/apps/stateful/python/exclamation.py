"""Stateful agents: each keeps a count in its persistent state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.record import Record
from sluice.sdk import AgentContext, Processor


class _Counting(Processor):
    file = Path("counter.txt")

    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.file = Path(context.get_persistent_state_directory() or ".") / "counter.txt"

    def count(self) -> int:
        count = int(self.file.read_text()) + 1 if self.file.exists() else 1
        self.file.write_text(str(count))
        return count


class Exclamation(_Counting):
    def process(self, record: Record) -> list[Record]:
        return [record.with_value(f"{record.value}!! ({self.count()})")]


class Tally(_Counting):
    def process(self, record: Record) -> list[Record]:
        self.count()
        return [record]
