"""Where the crawl status is saved: the agent's persistent disk, or an object in a bucket.

``state-storage: disk`` writes ``<state-directory>/<name>`` atomically (a temporary file, fsync,
rename), so a crash leaves the previous status or the new one, never half of one.
``state-storage: s3`` (LangStream's default) keeps the same JSON as an object of ``bucketName``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from workers.builtin.objectstore import Bucket


class StatusStore(Protocol):
    where: str

    async def load(self) -> bytes | None: ...
    async def save(self, data: bytes) -> None: ...


class DiskStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    async def load(self) -> bytes | None:
        try:
            return await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError:
            return None

    async def save(self, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self.path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class BucketStore:
    def __init__(self, bucket: Bucket, name: str) -> None:
        self.bucket = bucket
        self.name = name
        self.where = f"{name} in {bucket.where}"

    async def load(self) -> bytes | None:
        return await self.bucket.get(self.name)

    async def save(self, data: bytes) -> None:
        await self.bucket.put(self.name, data, "application/json")
