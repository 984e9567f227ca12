"""Astra's DevOps API, as LangStream's ``astra`` datasource used it: the database found by name or
id, its secure connect bundle downloaded, its keyspaces listed, created and deleted.

An ``astra`` datasource without ``secureBundle`` that gives ``database`` (a name) or
``database-id`` and ``token`` reaches its database through this API (LangStream's
``AstraDBOpsClient``, astra-sdk 1.0); the name wins when both are given, as in LangStream.
``environment`` chooses the API (LangStream's ``AstraEnvironment``):

==========  =========================================
``PROD``    ``https://api.astra.datastax.com/v2`` (the default)
``DEV``     ``https://api.dev.cloud.datastax.com/v2``
``TEST``    ``https://api.test.cloud.datastax.com/v2``
==========  =========================================

Sluice's extension: ``environment`` may also be the ``https://`` or ``http://`` base URL of a
DevOps API (a private endpoint, or the tests' stand-in), the ``/v2`` part included.

The calls, each with ``Authorization: Bearer <token>``:

- ``GET /databases?include=non_terminated&provider=all&limit=100`` (pages follow with
  ``starting_after``): the database whose ``info.name`` is the name (none or several: an error);
- ``GET /databases/<id>``: the database (404: there is none), ``status`` ``ACTIVE`` before a
  bundle is asked for, and its keyspaces (``info.keyspaces``);
- ``POST /databases/<id>/secureBundleURL``: ``downloadURL``, fetched without the token (a signed
  URL); the bundle stays in memory and must be a zip holding ``config.json``;
- ``POST`` / ``DELETE /databases/<id>/keyspaces/<keyspace>``: the ``astra-keyspace`` asset.

Every failure is a :class:`DataSourceResourceError` naming the datasource, the database and the
API's address, with the HTTP status and the API's own error text; never the token (it is cut out
of any text quoted).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from workers.builtin.datasources.errors import DataSourceResourceError
from workers.builtin.datasources.jdbc import redact

__all__ = ["ENVIRONMENTS", "AstraDatabase", "AstraDevops", "devops_base"]

ENVIRONMENTS: Mapping[str, str] = {
    "PROD": "https://api.astra.datastax.com/v2",
    "DEV": "https://api.dev.cloud.datastax.com/v2",
    "TEST": "https://api.test.cloud.datastax.com/v2",
}
"""LangStream's ``environment`` values -> the DevOps API's base URL."""

_PAGE = 100
_QUOTED = 300
"""How much of an API answer an error quotes."""


def devops_base(where: str, environment: str | None) -> str:
    """The API's base URL for ``environment`` (``PROD`` when None); an error naming the
    accepted values otherwise."""
    text = (environment or "PROD").strip()
    if text.startswith(("https://", "http://")):
        return text.rstrip("/")
    base = ENVIRONMENTS.get(text.upper())
    if base is None:
        raise DataSourceResourceError(
            f"{where}: environment must be {', '.join(ENVIRONMENTS)} or the https:// URL of a "
            f"DevOps API, got {text!r}"
        )
    return base


@dataclass(frozen=True)
class AstraDatabase:
    """An Astra database named for the DevOps API: by ``name`` or by ``id``, with the token."""

    api: str
    """The DevOps API's base URL."""
    token: str = field(repr=False)
    name: str | None = None
    id: str | None = None

    @property
    def shown(self) -> str:
        """The database as messages name it (no token)."""
        named = f'"{self.name}"' if self.name else f"id {self.id}"
        return f"astra database {named} at {self.api}"


class AstraDevops:
    """A client of the DevOps API for one database; ``async with`` opens and closes it."""

    def __init__(self, where: str, database: AstraDatabase, timeout: float = 30) -> None:
        self.where = where
        self.database = database
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._id = database.id if not database.name else None

    async def __aenter__(self) -> AstraDevops:
        self._client = httpx.AsyncClient(
            headers={
                "Authorization": f"Bearer {self.database.token}",
                "Accept": "application/json",
                "User-Agent": "sluice",
            },
            timeout=self._timeout,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = None

    async def database_id(self) -> str:
        """The database's id: given, or found by its name among the account's databases."""
        if self._id is not None:
            return self._id
        name = self.database.name
        found: list[str] = []
        after: str | None = None
        while True:
            query = f"/databases?include=non_terminated&provider=all&limit={_PAGE}"
            if after:
                query += f"&starting_after={quote(after)}"
            page = await self._json("GET", query, "listing the databases")
            if not isinstance(page, list):
                raise self._error("listing the databases: the answer is not a list")
            found += [
                str(db.get("id"))
                for db in page
                if isinstance(db, dict) and (db.get("info") or {}).get("name") == name
            ]
            if len(page) < _PAGE:
                break
            after = str(page[-1].get("id")) if isinstance(page[-1], dict) else None
            if not after:
                break
        if len(found) != 1:
            why = "no database" if not found else f"{len(found)} databases"
            raise self._error(
                f'{why} named "{name}" in this account'
                + ("; give database-id instead" if found else "")
            )
        self._id = found[0]
        return self._id

    async def describe(self) -> dict[str, Any]:
        """The database as the API describes it (``GET /databases/<id>``)."""
        identifier = await self.database_id()
        described = await self._json(
            "GET", f"/databases/{quote(identifier)}", "reading the database", missing="none"
        )
        if not isinstance(described, dict):
            raise self._error("reading the database: the answer is not an object")
        return described

    async def secure_bundle(self) -> bytes:
        """The database's secure connect bundle (a zip with ``config.json``)."""
        described = await self.describe()
        status = str(described.get("status") or "")
        if status != "ACTIVE":
            raise self._error(f"the database is {status or 'in no known state'}, not ACTIVE")
        identifier = await self.database_id()
        answer = await self._json(
            "POST", f"/databases/{quote(identifier)}/secureBundleURL", "asking for the bundle"
        )
        url = answer.get("downloadURL") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url:
            raise self._error("asking for the bundle: the answer has no downloadURL")
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as plain:
                response = await plain.get(url)
        except httpx.HTTPError as error:
            raise self._error(f"downloading the secure connect bundle: {error}") from None
        if response.status_code != 200:
            raise self._error(f"downloading the secure connect bundle: HTTP {response.status_code}")
        bundle = response.content
        try:
            with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            names = None
        if names is None or "config.json" not in names:
            raise self._error(
                f"the secure connect bundle downloaded ({len(bundle)} bytes) is not a zip "
                "holding config.json"
            )
        return bundle

    async def keyspaces(self) -> set[str]:
        """The database's keyspaces, as the API lists them."""
        info = (await self.describe()).get("info") or {}
        names = set(info.get("keyspaces") or ())
        if info.get("keyspace"):
            names.add(info["keyspace"])
        return {str(name) for name in names}

    async def create_keyspace(self, keyspace: str) -> None:
        identifier = await self.database_id()
        await self._json(
            "POST",
            f"/databases/{quote(identifier)}/keyspaces/{quote(keyspace)}",
            f"creating the keyspace {keyspace}",
        )

    async def delete_keyspace(self, keyspace: str) -> None:
        identifier = await self.database_id()
        await self._json(
            "DELETE",
            f"/databases/{quote(identifier)}/keyspaces/{quote(keyspace)}",
            f"deleting the keyspace {keyspace}",
        )

    async def _json(self, method: str, path: str, doing: str, missing: str = "") -> Any:
        """The JSON answer of one call (None when it has no body); errors name ``doing``."""
        if self._client is None:
            raise RuntimeError("AstraDevops is used outside its async with block")
        url = self.database.api + path
        try:
            response = await self._client.request(method, url)
        except httpx.HTTPError as error:
            raise self._error(f"{doing}: cannot reach the DevOps API: {error}") from None
        status = response.status_code
        if status in (401, 403):
            raise self._error(
                f"{doing}: the DevOps API refused the token (HTTP {status}); check the "
                "datasource's token"
            )
        if status == 404 and missing:
            raise self._error(f"{doing}: there is no such database (HTTP 404)")
        if status >= 300:
            raise self._error(f"{doing}: HTTP {status}: {self._quoted(response.text)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise self._error(f"{doing}: the answer is not JSON") from None

    def _quoted(self, text: str) -> str:
        text = redact(text.strip(), (self.database.token,))
        return text[:_QUOTED] + ("..." if len(text) > _QUOTED else "") or "(no text)"

    def _error(self, what: str) -> DataSourceResourceError:
        return DataSourceResourceError(
            f"{self.where}: {self.database.shown}: {redact(what, (self.database.token,))}"
        )
