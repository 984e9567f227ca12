"""A ``cassandra`` or ``astra`` datasource: a session of the DataStax Python driver and the CQL
statements the agents run.

LangStream's keys, as its Cassandra datasource read them:

=========================  ===================================================================
``contact-points``          hosts (a list, or one comma-separated string)
``port``                    their CQL port (9042)
``loadBalancing-localDc``   the local data center (the driver's DC-aware, token-aware policy)
``username``, ``password``  plain-text login; ``clientId`` / ``secret`` when those are absent
``token``                   Astra's token: the password, with user ``token``, when none is given
``secureBundle``            Astra's secure connect bundle, base64 (``base64:`` prefix allowed):
                            kept in memory for the driver's
                            ``cloud={"secure_connect_bundle": ...}``; contact points are then
                            the bundle's
``database``,               without ``secureBundle``, with ``token``: the bundle is downloaded
``database-id``             from Astra's DevOps API at start, as LangStream did
                            (:mod:`~workers.builtin.datasources.astra_devops`; the name wins)
``environment``             that API: ``PROD`` (default), ``DEV``, ``TEST``, or (Sluice's
                            extension) the ``https://`` / ``http://`` base URL of a DevOps API
=========================  ===================================================================

Sluice's own keys: ``connection-timeout-seconds`` (default 30: connecting, waiting for a host,
and each call of the DevOps API) and ``query-timeout-seconds`` (default 60: one statement).
Other keys are logged by name and ignored.

The session is made at ``start``: a node that cannot be reached or a login refused stops the
worker with the reason. After the database restarts the driver reconnects by itself (tried every
second); a statement meanwhile fails its record and the ``errors`` policy decides. Messages name
the datasource and its hosts, never a password, token or bundle.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cassandra import AlreadyExists, DriverException
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.cqltypes import VectorType
from cassandra.policies import (
    ConstantReconnectionPolicy,
    DCAwareRoundRobinPolicy,
    RoundRobinPolicy,
    TokenAwarePolicy,
)
from cassandra.query import PreparedStatement, SimpleStatement, dict_factory

from workers.builtin.datasources.astra_devops import AstraDatabase, AstraDevops, devops_base
from workers.builtin.datasources.cql import count_markers, cql_value
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.jdbc import redact

__all__ = ["CassandraDataSource", "CassandraSettings", "cassandra_settings"]

_log = logging.getLogger(__name__)

_KNOWN = (
    "service",
    "contact-points",
    "port",
    "loadBalancing-localDc",
    "username",
    "password",
    "clientId",
    "secret",
    "token",
    "secureBundle",
    "connection-timeout-seconds",
    "query-timeout-seconds",
)
_ASTRA_API = ("database", "database-id", "environment")


@dataclass(frozen=True)
class CassandraSettings:
    """How to reach the database of a ``cassandra`` / ``astra`` datasource."""

    contact_points: tuple[str, ...]
    port: int = 9042
    local_dc: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    secure_bundle: bytes | None = field(default=None, repr=False)
    astra: AstraDatabase | None = None
    """The Astra database whose bundle the DevOps API gives (no ``secureBundle``)."""
    connection_timeout: float = 30
    query_timeout: float = 60
    ignored: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The database as messages name it (no credentials)."""
        if self.secure_bundle is not None:
            return "astra (secure bundle)"
        if self.astra is not None:
            return self.astra.shown
        return ",".join(f"{host}:{self.port}" for host in self.contact_points)

    @property
    def secrets(self) -> tuple[str, ...]:
        token = self.astra.token if self.astra is not None else None
        return tuple(s for s in (self.password, token) if s)


def cassandra_settings(resource: str, config: Mapping[str, Any]) -> CassandraSettings:
    """The settings of the datasource ``resource`` (its configuration ``config``).

    Raises :class:`DataSourceResourceError` for a port or timeout that is not a number, a bundle
    that is not base64, an unknown ``environment``, or no database to connect to (neither
    contact points, a bundle, nor ``database`` / ``database-id`` with ``token``).
    """
    where = f'datasource "{resource}"'
    points = config.get("contact-points") or ()
    if isinstance(points, str):
        points = points.split(",")
    contact_points = tuple(str(p).strip() for p in points if str(p).strip())
    token = _text(config.get("token"))
    username = _text(config.get("username")) or _text(config.get("clientId"))
    password = _text(config.get("password")) or _text(config.get("secret"))
    if token and username is None:
        username = "token"
    if password is None:
        password = token
    bundle_text = _text(config.get("secureBundle")) or ""
    bundle: bytes | None = None
    astra: AstraDatabase | None = None
    database = _text(config.get("database"))
    database_id = _text(config.get("database-id"))
    if bundle_text:
        try:
            bundle = base64.b64decode(bundle_text.removeprefix("base64:"), validate=True)
        except (binascii.Error, ValueError):
            raise DataSourceResourceError(
                f"{where}: secureBundle must be the secure connect bundle (a zip) in base64"
            ) from None
    elif (database or database_id) and token:
        astra = AstraDatabase(
            api=devops_base(where, _text(config.get("environment"))),
            token=token,
            name=database,
            id=database_id,
        )
    elif not contact_points:
        why = (
            "database and database-id need token, to download the secure bundle from Astra's "
            "DevOps API"
            if database or database_id
            else "give contact-points (and port), or for Astra secureBundle, or database (or "
            "database-id) and token"
        )
        raise DataSourceResourceError(f"{where}: no database to connect to: {why}")
    return CassandraSettings(
        contact_points=contact_points,
        port=int(_number(where, "port", config.get("port", 9042))),
        local_dc=_text(config.get("loadBalancing-localDc")) or "",
        username=username,
        password=password,
        secure_bundle=bundle,
        astra=astra,
        connection_timeout=_number(
            where, "connection-timeout-seconds", config.get("connection-timeout-seconds", 30)
        ),
        query_timeout=_number(
            where, "query-timeout-seconds", config.get("query-timeout-seconds", 60)
        ),
        ignored=tuple(str(k) for k in config if str(k) not in _KNOWN and str(k) not in _ASTRA_API),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(where: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise DataSourceResourceError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return number


class CassandraDataSource:
    """The database of one ``cassandra`` / ``astra`` datasource resource, for one agent."""

    def __init__(self, resource: str, settings: CassandraSettings) -> None:
        self.resource = resource
        self.settings = settings
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._bundle: bytes | None = settings.secure_bundle
        self._prepared: dict[str, PreparedStatement] = {}

    @property
    def where(self) -> str:
        return f'datasource "{self.resource}" ({self.settings.shown})'

    @property
    def session(self) -> Session:
        if self._session is None:
            raise DataSourceError(f"{self.where}: not started")
        return self._session

    def prepare(self, query: str) -> tuple[str, int]:
        """``query`` as sent, and its number of ``?`` parameters (no database needed)."""
        return query, count_markers(query)

    async def start(self) -> None:
        """Connect; :class:`DataSourceResourceError` when no node can be reached or the login
        is refused."""
        if self.settings.ignored:
            _log.warning(
                "%s: keys %s mean nothing to Cassandra here and are ignored",
                self.where,
                ", ".join(self.settings.ignored),
            )
        if self._bundle is None and self.settings.astra is not None:
            self._bundle = await self.download_bundle()
            _log.info(
                "%s: secure connect bundle downloaded (%d bytes)", self.where, len(self._bundle)
            )
        try:
            await asyncio.to_thread(self._connect)
        except (NoHostAvailable, DriverException, OSError, ValueError) as error:
            await self.close()
            raise DataSourceResourceError(
                f"{self.where}: cannot connect: {self._redacted(error)}"
            ) from None

    def devops(self) -> AstraDevops:
        """A client of Astra's DevOps API for this datasource's database (``async with`` it);
        :class:`DataSourceResourceError` when the datasource names none."""
        if self.settings.astra is None:
            raise DataSourceResourceError(
                f"{self.where}: names no Astra database for the DevOps API (database or "
                "database-id, with token)"
            )
        return AstraDevops(
            f'datasource "{self.resource}"',
            self.settings.astra,
            timeout=self.settings.connection_timeout or 30,
        )

    async def download_bundle(self) -> bytes:
        """The secure connect bundle of the datasource's Astra database, from the DevOps API."""
        async with self.devops() as api:
            return await api.secure_bundle()

    def _connect(self) -> None:
        settings = self.settings
        policy = (
            DCAwareRoundRobinPolicy(local_dc=settings.local_dc)
            if settings.local_dc
            else RoundRobinPolicy()
        )
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(policy),
            request_timeout=settings.query_timeout or None,
            row_factory=dict_factory,
        )
        options: dict[str, Any] = {
            "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
            "connect_timeout": settings.connection_timeout,
            "control_connection_timeout": settings.connection_timeout,
            "reconnection_policy": ConstantReconnectionPolicy(1.0, None),
        }
        if settings.username is not None and settings.password is not None:
            options["auth_provider"] = PlainTextAuthProvider(settings.username, settings.password)
        if self._bundle is not None:
            # In memory: the driver opens the zip from the object; it unpacks the key and the
            # certificates into a private temporary folder only while it reads them.
            options["cloud"] = {
                "secure_connect_bundle": io.BytesIO(self._bundle),
                "use_default_tempdir": True,
                "connect_timeout": settings.connection_timeout,
            }
        else:
            options["contact_points"] = list(settings.contact_points)
            options["port"] = settings.port
        self._cluster = Cluster(**options)
        self._session = self._cluster.connect()

    async def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            await asyncio.to_thread(cluster.shutdown)

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows of ``query`` with ``params`` bound to its ``?``, as JSON values."""
        rows = await self.run(query, params)
        return [{str(k): cql_value(v) for k, v in row.items()} for row in rows]

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Run a statement; its result is ``{}``, as LangStream's (CQL reports no counts)."""
        await self.run(query, params)
        return {}

    async def run(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Prepare ``query`` (once), bind ``params`` and run it; the rows as the driver gives
        them. A failure is a :class:`DataSourceError` naming the datasource."""
        count = count_markers(query)
        if count != len(params):
            # the driver would bind missing values as "unset" without a word
            raise DataSourceError(
                f"{self.where}: the query has {count} ? parameter{'' if count == 1 else 's'} "
                f"and {len(params)} value{'' if len(params) == 1 else 's'} were given (fields "
                "gives one expression per ?)"
            )
        try:
            if query not in self._prepared:
                self._prepared[query] = await asyncio.to_thread(self.session.prepare, query)
            prepared = self._prepared[query]
            bound = prepared.bind(_adapted(prepared, params))
            bound.fetch_size = None  # every row in one response: no pages to fetch later
            rows = await self._wait(self.session.execute_async(bound))
        except DataSourceError:
            raise
        except Exception as error:  # the driver raises many kinds: each fails the record
            raise DataSourceError(
                f"{self.where}: {type(error).__name__}: {self._redacted(error)}"
            ) from None
        return rows

    async def statement(self, text: str, keyspace: str | None = None) -> bool:
        """Run one unprepared statement (an asset's DDL), in ``keyspace`` when given; False when
        the server answers that what it creates already exists (another agent made it)."""
        try:
            session = self.session
            if keyspace:
                await asyncio.to_thread(session.set_keyspace, keyspace)
            await self._wait(session.execute_async(SimpleStatement(text)))
        except AlreadyExists:
            return False
        except Exception as error:  # the driver raises many kinds
            raise DataSourceError(
                f"{self.where}: {type(error).__name__}: {self._redacted(error)}"
            ) from None
        return True

    async def keyspaces(self) -> dict[str, set[str]]:
        """Keyspace -> its tables, as the server has them now (metadata refreshed)."""
        cluster = self.session.cluster
        await asyncio.to_thread(cluster.refresh_schema_metadata)
        return {name: set(keyspace.tables) for name, keyspace in cluster.metadata.keyspaces.items()}

    async def _wait(self, future: ResponseFuture) -> list[Any]:
        """The rows of the driver's future, awaited without blocking the event loop."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()

        def ok(rows: Any) -> None:
            loop.call_soon_threadsafe(_settle, done, list(rows or ()), None)

        def failed(error: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, done, [], error)

        future.add_callbacks(ok, failed)
        return await done

    def _redacted(self, error: BaseException) -> str:
        return redact(str(error), self.settings.secrets)


def _settle(
    done: asyncio.Future[list[Any]], result: list[Any], error: BaseException | None
) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def _adapted(prepared: PreparedStatement, params: Sequence[Any]) -> list[Any]:
    """``params`` as the driver binds them: a list for a ``vector<float, n>`` as floats."""
    out: list[Any] = []
    for column, value in zip(prepared.column_metadata, params, strict=False):
        kind = column.type
        if (
            isinstance(value, list)
            and isinstance(kind, type)
            and issubclass(kind, VectorType)
            and all(isinstance(v, int | float | str) for v in value)
        ):
            value = [float(v) for v in value]
        out.append(value)
    return out
