"""Agents of the gateway benchmarks: an identity processor and one that drops 1% of requests."""

from __future__ import annotations

from typing import Any

from langstream import Processor, Record

Outputs = list[Record | dict[str, Any] | list[Any] | tuple[Any, ...]]


class Identity(Processor):
    def process(self, record: Record) -> Outputs:
        return [record]


class DropOnePercent(Processor):
    """Drops requests whose value ``n`` is a multiple of 100 (exactly 1% of a 0..N sequence)."""

    def process(self, record: Record) -> Outputs:
        value = record.value()
        if isinstance(value, dict) and value.get("n", 1) % 100 == 0:
            return []
        return [record]
