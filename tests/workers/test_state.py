from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workers.errors import StateDirectoryBusy
from workers.state import StateLock, default_state_root, state_directory

# Holds the lock of the directory in argv[1]; releases it after argv[2] seconds unless that is
# negative; exits when its stdin closes.
HOLDER = """
import sys, time
from pathlib import Path
from workers.state import StateLock

lock = StateLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
hold = float(sys.argv[2])
if hold >= 0:
    time.sleep(hold)
    lock.release()
    print("released", flush=True)
sys.stdin.read()
"""

Holder = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def hold_lock() -> Iterator[Holder]:
    """Start processes holding a state lock; every one is ended and reaped after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(directory: Path, release_after: float = -1) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory), str(release_after)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_directory_layout(tmp_path: Path) -> None:
    assert state_directory(tmp_path, "default", "chat", "embed") == (
        tmp_path / "default" / "chat" / "embed"
    )


@pytest.mark.parametrize(
    ("tenant", "application", "agent_id", "complaint"),
    [
        ("", "chat", "embed", "tenant '' of a state directory path must not be empty"),
        ("default", "a/b", "embed", "application 'a/b' of a state directory path must be a"),
        ("default", "chat", "..", "agent id '..' of a state directory path must not start"),
        ("default", "chat", ".", "agent id '.' of a state directory path must not start"),
        ("default", "chat", ".x.lock", "agent id '.x.lock' of a state directory path must not"),
        ("default", "chat", "a\\b", "agent id 'a\\\\b' of a state directory path must be a"),
    ],
)
def test_unsafe_segments_are_rejected(
    tmp_path: Path, tenant: str, application: str, agent_id: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match="state directory") as caught:
        state_directory(tmp_path, tenant, application, agent_id)
    assert complaint in str(caught.value)


def test_default_root_is_in_the_user_data_directory() -> None:
    root = default_state_root()
    assert root.is_absolute()
    assert (root.parent.name, root.name) == ("sluice", "state")


def test_lock_creates_the_directory_and_keeps_the_lock_file_beside_it(tmp_path: Path) -> None:
    directory = state_directory(tmp_path, "default", "chat", "embed")
    lock = StateLock(directory)
    with lock as held:
        assert held == directory
        assert directory.is_dir()
        assert list(directory.iterdir()) == []
        assert lock.lock_file == directory.parent / ".embed.lock"
        assert lock.lock_file.read_text() == f"{os.getpid()}\n"
        assert lock.held
    assert not lock.held
    assert lock.lock_file.read_text() == ""
    with StateLock(directory):  # free again
        pass


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "t" / "a" / "agent"
    with StateLock(directory), pytest.raises(StateDirectoryBusy, match=str(os.getpid())):
        StateLock(directory).acquire()


def test_a_held_lock_is_not_taken_twice(tmp_path: Path) -> None:
    lock = StateLock(tmp_path / "agent")
    with lock, pytest.raises(RuntimeError, match="already held"):
        lock.acquire()


def test_other_process_holding_the_directory(tmp_path: Path, hold_lock: Holder) -> None:
    directory = state_directory(tmp_path, "default", "chat", "embed")
    holder = hold_lock(directory)
    with pytest.raises(StateDirectoryBusy) as caught:
        StateLock(directory).acquire()
    message = str(caught.value)
    assert f"state directory {directory} is in use by process {holder.pid}" in message
    assert isinstance(caught.value, RuntimeError)

    holder.communicate("")  # stdin closed: the holder exits
    assert holder.returncode == 0
    with StateLock(directory):
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path, hold_lock: Holder) -> None:
    directory = tmp_path / "agent"
    holder = hold_lock(directory)
    with pytest.raises(StateDirectoryBusy):
        StateLock(directory).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with StateLock(directory) as held:
        assert held == directory
        assert (directory.parent / ".agent.lock").read_text() == f"{os.getpid()}\n"


def test_wait_outlasts_a_holder_that_lets_go(tmp_path: Path, hold_lock: Holder) -> None:
    directory = tmp_path / "agent"
    hold_lock(directory, release_after=0.5)
    started = time.monotonic()
    with StateLock(directory, wait=10):
        assert time.monotonic() - started >= 0.2


def test_wait_gives_up_and_says_so(tmp_path: Path, hold_lock: Holder) -> None:
    directory = tmp_path / "agent"
    holder = hold_lock(directory)
    started = time.monotonic()
    with pytest.raises(StateDirectoryBusy, match=rf"process {holder.pid} \(waited 0.3s\)"):
        StateLock(directory, wait=0.3).acquire()
    assert 0.3 <= time.monotonic() - started < 3


async def test_async_lock_waits_without_blocking_the_loop(
    tmp_path: Path, hold_lock: Holder
) -> None:
    directory = tmp_path / "agent"
    hold_lock(directory, release_after=0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        async with StateLock(directory, wait=10) as held:
            assert held == directory
    finally:
        ticker.cancel()
    assert ticks >= 3


async def test_async_lock_refuses_a_busy_directory(tmp_path: Path, hold_lock: Holder) -> None:
    directory = tmp_path / "agent"
    holder = hold_lock(directory)
    with pytest.raises(StateDirectoryBusy, match=str(holder.pid)):
        async with StateLock(directory):
            pass


def test_child_processes_do_not_inherit_the_lock(tmp_path: Path) -> None:
    directory = tmp_path / "agent"
    lock = StateLock(directory)
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        lock.release()
        # Released while the child we started is still alive: it never had the lock.
        with StateLock(directory):
            assert child.poll() is None
    finally:
        child.communicate(b"")
