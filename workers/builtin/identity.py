"""The ``identity`` agent: records go on unchanged."""

from __future__ import annotations

from typing import Any

from sluice.record import Record


class Identity:
    """The ``identity`` processor: every record goes on unchanged."""

    async def init(self, config: dict[str, Any]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def process(self, record: Record) -> list[Record]:
        return [record]
