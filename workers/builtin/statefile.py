"""A file in an agent's persistent state directory, written atomically.

``webcrawler-source`` keeps its crawl status in one, ``s3-source`` and
``azure-blob-storage-source`` the ETags of the objects they delivered (``delete-objects:
false``). A save writes a temporary file, fsyncs it and renames it over the old one, so a crash
leaves the previous content or the new one, never half of one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


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
