"""Which input offsets may be committed: contiguous finished work per partition. Pure."""

from __future__ import annotations

from collections import deque

Partition = tuple[str, int]


class OffsetTracker:
    """Tracks records from their start to the acknowledgement of all their effects.

    The commit point of a partition is one past the last offset below which every started
    record is finished, so a commit never passes an unfinished record, even when records finish
    out of order.
    """

    def __init__(self) -> None:
        self._pending: dict[Partition, deque[int]] = {}
        self._done: dict[Partition, set[int]] = {}
        self._committable: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}

    def started(self, partition: Partition, offset: int) -> None:
        self._pending.setdefault(partition, deque()).append(offset)

    def finished(self, partition: Partition, offset: int) -> None:
        pending = self._pending.get(partition)
        if pending is None:
            return  # the partition was revoked meanwhile: its new owner redoes the work
        done = self._done.setdefault(partition, set())
        done.add(offset)
        while pending and pending[0] in done:
            first = pending.popleft()
            done.discard(first)
            self._committable[partition] = first + 1

    def in_flight(self, partition: Partition | None = None) -> int:
        if partition is not None:
            return len(self._pending.get(partition, ()))
        return sum(len(p) for p in self._pending.values())

    def to_commit(self) -> dict[Partition, int]:
        """Commit points that moved since :meth:`committed` was last told about them."""
        return {
            p: offset for p, offset in self._committable.items() if self._committed.get(p) != offset
        }

    def committed(self, offsets: dict[Partition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: set[Partition] | frozenset[Partition]) -> None:
        """Drop revoked partitions; late completions for them are ignored."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._done.pop(partition, None)
            self._committable.pop(partition, None)
            self._committed.pop(partition, None)
