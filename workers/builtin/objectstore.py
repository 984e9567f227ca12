"""An S3-compatible bucket for the built-in sources, on the MinIO client (the ``sources`` extra).

LangStream's sources name their store with ``endpoint`` (a URL such as ``http://minio:9000``),
``access-key``, ``secret-key``, ``region`` and ``bucketName``; :func:`open_bucket` turns those
into a :class:`Bucket`, creating the bucket when it is missing, as LangStream did. The MinIO
client is synchronous, so every call runs on a thread; it retries connection failures a few
times and gives up after bounded timeouts rather than the client's default of five minutes.
Credentials go to the client only and are never in a message.
"""

from __future__ import annotations

import asyncio
import importlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sluice.errors import SluiceError

if TYPE_CHECKING:
    from minio import Minio

SOURCES_EXTRA_HINT = "install the sources extra: pip install 'sluicegate[sources]'"


class ObjectStoreError(SluiceError, RuntimeError):
    """The object store refused a request or could not be reached; the message says which."""


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing."""

    name: str
    size: int
    etag: str
    """Changes when the content does."""


def endpoint_parts(endpoint: str) -> tuple[str, bool]:
    """``host[:port]`` and whether to use TLS, from LangStream's endpoint URL (a bare host and
    port means plain HTTP, as the MinIO client of LangStream read it)."""
    text = endpoint.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be an http or https URL, got {endpoint!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"endpoint must not have a path, got {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


class Bucket:
    """One bucket of an S3-compatible store; every method is a coroutine."""

    def __init__(self, client: Minio, name: str, where: str) -> None:
        self._client = client
        self.name = name
        self.where = where
        """The endpoint and bucket, for messages."""

    async def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        errors = importlib.import_module("minio.error")
        http_errors = importlib.import_module("urllib3.exceptions")
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (errors.MinioException, http_errors.HTTPError, OSError) as error:
            raise ObjectStoreError(f"{what} on {self.where} failed: {_describe(error)}") from error

    async def ensure(self) -> None:
        """Create the bucket unless it exists."""
        if not await self._call("checking the bucket", self._client.bucket_exists, self.name):
            await self._call("creating the bucket", self._client.make_bucket, self.name)

    async def list(self) -> list[StoredObject]:
        """Every object of the bucket, under any prefix, in the store's (name) order."""

        def listing() -> list[StoredObject]:
            return [
                StoredObject(str(item.object_name), int(item.size or 0), str(item.etag or ""))
                for item in self._client.list_objects(self.name, recursive=True)
                if not item.is_dir and item.object_name
            ]

        result: list[StoredObject] = await self._call("listing the bucket", listing)
        return result

    async def get(self, name: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

        def read() -> bytes | None:
            errors = importlib.import_module("minio.error")
            try:
                response = self._client.get_object(self.name, name)
            except errors.S3Error as error:
                if error.code == "NoSuchKey":
                    return None
                raise
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        data: bytes | None = await self._call(f"reading {name!r}", read)
        return data

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        await self._call(
            f"writing {name!r}",
            self._client.put_object,
            self.name,
            name,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    async def delete(self, name: str) -> None:
        await self._call(f"deleting {name!r}", self._client.remove_object, self.name, name)


def open_bucket(config: Mapping[str, Any], *, needed_by: str) -> Bucket:
    """The bucket named by LangStream's keys in ``config`` (already read with defaults)."""
    try:
        minio = importlib.import_module("minio")
        urllib3 = importlib.import_module("urllib3")
    except ModuleNotFoundError:
        raise ObjectStoreError(
            f"{needed_by} needs the Python package minio: {SOURCES_EXTRA_HINT}"
        ) from None
    endpoint = str(config["endpoint"])
    host, secure = endpoint_parts(endpoint)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=60),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
    )
    client = minio.Minio(
        host,
        access_key=str(config["access-key"]),
        secret_key=str(config["secret-key"]),
        secure=secure,
        region=str(config["region"]) or None,
        http_client=http,
    )
    name = str(config["bucketName"])
    return Bucket(client, name, f"bucket {name!r} at {endpoint}")


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if code and message:
        return f"{code}: {message}"
    return f"{type(error).__name__}: {error}"
