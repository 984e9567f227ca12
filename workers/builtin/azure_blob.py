"""``azure-blob-storage-source``: the blobs of an Azure Blob Storage container as records
(:mod:`workers.builtin.object_sources` says how), with Microsoft's ``azure-storage-blob`` client
(the ``sources`` extra).

Credentials, in LangStream's order: ``sas-token``, else ``storage-account-name`` with
``storage-account-key``, else the account name and key of
``storage-account-connection-string``; the blobs are always at ``endpoint`` (the account's URL,
``https://<account>.blob.core.windows.net``, or an emulator's ``http://host:port/<account>``).
The container is created when missing. The client is synchronous, so every call runs on a
thread; it retries failed calls a few times within bounded timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

from workers.builtin.object_sources import ObjectStorageSource, ObjectStore
from workers.builtin.objectstore import SOURCES_EXTRA_HINT, ObjectStoreError, StoredObject


def credential_of(checked: dict[str, Any]) -> str | dict[str, str]:
    """The client's credential from the agent's keys (already checked: one form is given)."""
    if checked["sas-token"]:
        return str(checked["sas-token"]).lstrip("?")
    if checked["storage-account-name"]:
        return {
            "account_name": str(checked["storage-account-name"]),
            "account_key": str(checked["storage-account-key"]),
        }
    fields = dict(
        part.split("=", 1)
        for part in str(checked["storage-account-connection-string"]).split(";")
        if "=" in part
    )
    if not fields.get("AccountName") or not fields.get("AccountKey"):
        raise ObjectStoreError(
            "azure-blob-storage-source: storage-account-connection-string has no AccountName "
            "and AccountKey"
        )
    return {"account_name": fields["AccountName"], "account_key": fields["AccountKey"]}


class Container:
    """One container; every method is a coroutine."""

    def __init__(self, client: Any, where: str, *, sas: bool = False) -> None:
        self._client = client
        self.where = where
        self._sas = sas

    async def _call(self, what: str, function: Any, *args: Any) -> Any:
        errors = importlib.import_module("azure.core.exceptions")
        try:
            return await asyncio.to_thread(function, *args)
        except errors.AzureError as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            raise ObjectStoreError(f"{what} on {self.where} failed: {reason}") from error

    async def ensure(self) -> None:
        errors = importlib.import_module("azure.core.exceptions")

        def create() -> None:
            try:
                exists = self._client.exists()
            except errors.HttpResponseError as error:
                # A container SAS may allow list, read and delete but not reading the
                # container's properties: then the listing says whether it is there.
                if self._sas and error.status_code == 403:
                    return
                raise
            if not exists:
                with contextlib.suppress(errors.ResourceExistsError):
                    self._client.create_container()

        await self._call("creating the container", create)

    async def list(self) -> list[StoredObject]:
        def listing() -> list[StoredObject]:
            return [
                StoredObject(str(blob.name), int(blob.size or 0), str(blob.etag or ""))
                for blob in self._client.list_blobs()
                if not blob.deleted
            ]

        result: list[StoredObject] = await self._call("listing the container", listing)
        return result

    async def get(self, name: str) -> bytes | None:
        errors = importlib.import_module("azure.core.exceptions")

        def read() -> bytes | None:
            try:
                return bytes(self._client.download_blob(name).readall())
            except errors.ResourceNotFoundError:
                return None

        data: bytes | None = await self._call(f"reading {name!r}", read)
        return data

    async def delete(self, name: str) -> None:
        errors = importlib.import_module("azure.core.exceptions")

        def delete() -> None:
            with contextlib.suppress(errors.ResourceNotFoundError):
                self._client.delete_blob(name)

        await self._call(f"deleting {name!r}", delete)


def open_container(checked: dict[str, Any]) -> Container:
    try:
        blob = importlib.import_module("azure.storage.blob")
    except ModuleNotFoundError:
        raise ObjectStoreError(
            "azure-blob-storage-source needs the Python package azure-storage-blob: "
            + SOURCES_EXTRA_HINT
        ) from None
    endpoint = str(checked["endpoint"]).rstrip("/")
    name = str(checked["container"])
    credential = credential_of(checked)
    client = blob.ContainerClient(
        endpoint,
        name,
        credential=credential,
        connection_timeout=10,
        read_timeout=60,
        retry_total=3,
    )
    return Container(client, f"container {name!r} at {endpoint}", sas=isinstance(credential, str))


class AzureBlobStorageSource(ObjectStorageSource):
    agent_type = "azure-blob-storage-source"

    def open_store(self, checked: dict[str, Any]) -> ObjectStore:
        return open_container(checked)
