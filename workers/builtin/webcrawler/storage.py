"""Where the crawl status is saved: the agent's persistent disk, or an object in a bucket.

``state-storage: disk`` writes ``<state-directory>/<name>`` atomically
(:class:`workers.builtin.statefile.DiskStore`); ``state-storage: s3`` (LangStream's default)
keeps the same JSON as an object of ``bucketName``.
"""

from __future__ import annotations

from typing import Protocol

from workers.builtin.objectstore import Bucket
from workers.builtin.statefile import DiskStore

__all__ = ["BucketStore", "DiskStore", "StatusStore"]


class StatusStore(Protocol):
    where: str

    async def load(self) -> bytes | None: ...
    async def save(self, data: bytes) -> None: ...


class BucketStore:
    def __init__(self, bucket: Bucket, name: str) -> None:
        self.bucket = bucket
        self.name = name
        self.where = f"{name} in {bucket.where}"

    async def load(self) -> bytes | None:
        return await self.bucket.get(self.name)

    async def save(self, data: bytes) -> None:
        await self.bucket.put(self.name, data, "application/json")
