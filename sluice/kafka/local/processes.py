"""The OS side of the local broker: spawning it, watching it, stopping it, and its ports.

Also running a short command with a timeout (``java -version``, Maven, Kafka's storage tool) and
the tails of logs and command output that error messages quote. POSIX only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from sluice import jvm
from sluice.errors import LocalKafkaError

__all__ = [
    "HOST",
    "LOG_TAIL_LINES",
    "alive",
    "check_port",
    "exited",
    "last_lines",
    "run",
    "spawn",
    "tail",
    "terminate",
]

#: The local broker listens on loopback only.
HOST = "127.0.0.1"
LOG_TAIL_LINES = 30


def spawn(argv: list[str], log_file: Path) -> int:
    """Start ``argv`` in its own session with stdout and stderr appended to a fresh log file."""
    if log_file.exists():
        os.replace(log_file, log_file.with_name(log_file.name + ".1"))
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            os.environ,  # the broker inherits this process's environment, as any child does
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            # Its own session: Ctrl-C in the terminal reaches only sluice, which then stops the
            # broker cleanly, and a detached broker survives the terminal closing.
            setsid=True,
            setsigdef=(signal.SIGINT, signal.SIGTERM),
        )
    except OSError as exc:
        raise LocalKafkaError(f"could not start {argv[0]}: {exc}") from exc
    finally:
        os.close(log_fd)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running Kafka broker; reaps it if it is our exited child."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done != pid  # our own child: the kernel's answer is the whole answer
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or a new process of another user
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    try:  # a recycled pid is not our broker; a zombie has an empty command line
        return b"kafka.Kafka" in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


async def terminate(pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL if ``pid`` has not exited after ``grace`` seconds."""
    if grace > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if await exited(pid, within=grace):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not await exited(pid, within=10):
        raise LocalKafkaError(f"the Kafka broker (pid {pid}) did not exit after SIGKILL")


async def exited(pid: int, *, within: float) -> bool:
    """Whether ``pid`` exits within ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def check_port(port: int) -> int:
    """``port``, if nothing listens on it; a :class:`LocalKafkaError` otherwise."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port with connections in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise LocalKafkaError(
                f"port {port} is already in use ({exc.strerror}); stop what listens on it "
                "or choose another port"
            ) from exc
    return port


async def run(argv: list[str], *, within: float, cwd: Path | None = None) -> tuple[int, str]:
    """Run a short command; its exit code and its stdout and stderr together."""
    return await jvm.run(argv, within=within, cwd=cwd, error=LocalKafkaError)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines of a log file, indented for an error message."""
    try:
        return last_lines(path.read_text(errors="replace"), lines)
    except FileNotFoundError:
        return "  (no log written)"


def last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines of command output, without colours, indented."""
    return jvm.last_lines(text, lines)
