"""Agents built into the runtime (no user code): ``identity`` for now.

Each one implements a runtime protocol of ``workers.agents`` directly, so it needs no adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.record import Record
from workers.agents import LoadedAgent


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


BUILTIN_AGENTS: dict[str, Callable[[], LoadedAgent]] = {"identity": Identity}
"""Agent type -> a factory of the loaded agent."""
