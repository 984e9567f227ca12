"""What ``s3-source`` and ``azure-blob-storage-source`` share: each object of a bucket (a
container) becomes a record, deleted once Kafka has its record.

:meth:`ObjectStorageSource.read` emits one object at a time: key and header ``name`` the
object's name, value its bytes. Objects are taken from a listing of the whole bucket (every
prefix), kept until it is used up and then taken again, so a bucket of n objects costs one
listing per pass, not one per object. When a pass finds nothing new the source lists again
``idle-time`` seconds later. Only names whose extension (the text after the last ``.``,
case-sensitive) is in ``file-extensions`` are read (``*``: every object).

:meth:`ObjectStorageSource.commit` runs once Kafka acknowledged the records: then, with
``delete-objects`` (the default, LangStream's only behaviour), the objects are deleted. An
object emitted but not committed is not emitted again by this worker; one whose record was
committed but whose delete failed is retried at the next listing (logged); a listing or a
read that fails (the store down) is logged and tried again ``idle-time`` later. With
``delete-objects: false`` the objects stay and an object is emitted again only when its content
changes (its ETag); with a persistent disk (``resources.disk``) the ETags of committed objects
are kept there, so a restarted worker does not emit them again either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sluice.application.builtin_config import read_configuration
from sluice.record import Record
from sluice.sdk import AgentContext
from workers.builtin.objectstore import ObjectStoreError, StoredObject
from workers.builtin.statefile import DiskStore

ALL_FILES = "*"


def extension_allowed(name: str, extensions: frozenset[str]) -> bool:
    """LangStream's rule: the text after the last ``.`` (empty when none, or when the name ends
    with it) must be one of ``extensions``, unless they hold ``*``."""
    if ALL_FILES in extensions:
        return True
    dot = name.rfind(".")
    extension = "" if dot < 0 or dot == len(name) - 1 else name[dot + 1 :]
    return extension in extensions


class ObjectStore(Protocol):
    """A bucket or a container: :class:`workers.builtin.objectstore.Bucket`,
    :class:`workers.builtin.azure_blob.Container`."""

    where: str

    async def ensure(self) -> None: ...
    async def list(self) -> list[StoredObject]: ...
    async def get(self, name: str) -> bytes | None: ...
    async def delete(self, name: str) -> None: ...


class ObjectStorageSource:
    """The source; a subclass names its :attr:`agent_type` and opens its store."""

    agent_type: ClassVar[str]

    MAX_WAIT = 0.5
    """How long one :meth:`read` waits at most before it returns nothing (prompt stops)."""

    def __init__(self) -> None:
        self._context: AgentContext | None = None
        self._listing: deque[StoredObject] = deque()
        self._in_flight: dict[str, str] = {}
        """Emitted, not committed: name -> ETag."""
        self._kept: dict[str, str] = {}
        """With ``delete-objects: false``: name -> ETag of the content last committed."""
        self._next_listing = 0.0
        self._kept_file: DiskStore | None = None

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"sluice.agent.{self.agent_type}")

    def use_context(self, context: AgentContext) -> None:
        self._context = context

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(self.agent_type, config)
        self.idle_time: int = checked["idle-time"]
        self.extensions = frozenset(
            part.strip() for part in str(checked["file-extensions"]).split(",")
        )
        self.delete: bool = checked["delete-objects"]
        self.store = self.open_store(checked)
        directory = self._context.get_persistent_state_directory() if self._context else None
        if not self.delete and directory is not None:
            self._kept_file = DiskStore(Path(directory) / f"{self.agent_type}.kept.json")

    def open_store(self, checked: dict[str, Any]) -> ObjectStore:
        """The store named by the configuration (read, with its defaults)."""
        raise NotImplementedError

    async def start(self) -> None:
        await self.store.ensure()
        if self._kept_file is not None:
            saved = await self._kept_file.load()
            if saved is not None:
                try:
                    self._kept = {str(k): str(v) for k, v in json.loads(saved).items()}
                except (ValueError, AttributeError):
                    self.log.warning("%s is unreadable: every object is new", self._kept_file.where)

    async def close(self) -> None:
        pass

    async def read(self) -> list[Record]:
        while True:
            if not self._listing:
                wait = self._next_listing - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, self.MAX_WAIT))
                    return []
                self._next_listing = time.monotonic() + self.idle_time
                try:
                    self._listing.extend(await self.store.list())
                except ObjectStoreError as error:
                    # The store is down or refuses: try again after idle-time.
                    self.log.error("%s", error)
                    return []
                if not self._listing:
                    return []
            item = self._listing.popleft()
            if not self._new(item):
                continue
            try:
                data = await self.store.get(item.name)
            except ObjectStoreError as error:
                self.log.error("%s", error)
                self._listing.clear()
                return []
            if data is None:
                continue  # deleted since the listing
            self._in_flight[item.name] = item.etag
            self.log.info("emitting %s (%d bytes)", item.name, len(data))
            return [Record(data, key=item.name, headers={"name": item.name})]

    def _new(self, item: StoredObject) -> bool:
        if item.name in self._in_flight or not extension_allowed(item.name, self.extensions):
            return False
        return self._kept.get(item.name) != item.etag

    async def commit(self, records: list[Record]) -> None:
        for record in records:
            name = str(record.key)
            etag = self._in_flight.pop(name, "")
            if self.delete:
                try:
                    await self.store.delete(name)
                except ObjectStoreError as error:
                    # Its record is in Kafka: the next listing emits it again (at least once).
                    self.log.error("deleting %s failed: %s", name, error)
            else:
                self._kept[name] = etag
        if not self.delete and self._kept_file is not None:
            await self._kept_file.save(json.dumps(self._kept).encode("utf-8"))

    async def permanent_failure(self, record: Record, error: Exception) -> None:
        """The object stays in the bucket and is not emitted again by this worker."""
        name = str(record.key)
        self.log.warning("the record of %s failed for good, the object is kept: %s", name, error)
        self._kept[name] = self._in_flight.pop(name, "")
