"""MainThread in this process: the worker's loop beside the main thread, main() on it, signals.

These tests send real signals to the test process; the MainThread takes SIGTERM and SIGINT over
while it runs and gives them back afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvloop

from workers.main_thread import MainThread


def sigterm_soon(after: float = 0.3) -> None:
    """SIGTERM to this process from another thread, once the main thread is in main()."""
    threading.Timer(after, os.kill, (os.getpid(), signal.SIGTERM)).start()


def test_main_runs_on_the_main_thread_and_the_loop_beside_it() -> None:
    threads: dict[str, threading.Thread] = {}

    def main() -> None:
        threads["main"] = threading.current_thread()

    async def worker(main_thread: MainThread) -> BaseException | None:
        threads["loop"] = threading.current_thread()
        return await main_thread.start(main)

    before = signal.getsignal(signal.SIGTERM)
    assert MainThread().run(worker) is None
    assert threads["main"] is threading.main_thread()
    assert threads["loop"] is not threading.main_thread()
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_ends_a_main_without_handlers_as_ctrl_c_would() -> None:
    stops: list[str] = []

    def main() -> None:
        sigterm_soon()
        time.sleep(30)

    async def worker(main_thread: MainThread) -> tuple[BaseException | None, bool]:
        loop = asyncio.get_running_loop()
        main_thread.on_stop(lambda: loop.call_soon_threadsafe(stops.append, "stop"))
        outcome = await main_thread.start(main)
        await asyncio.sleep(0)
        return outcome, main_thread.stop_requested

    begun = time.monotonic()
    outcome, stop_requested = MainThread().run(worker)
    assert time.monotonic() - begun < 5
    assert isinstance(outcome, KeyboardInterrupt)
    assert stop_requested
    assert stops == ["stop"]


def test_a_server_that_handles_sigterm_itself_drains_and_the_stop_is_noted() -> None:
    """asyncio's add_signal_handler, as Hypercorn and Quart use it: main() returns normally."""
    drained: list[str] = []
    original_signal = signal.signal

    def main() -> None:
        async def serve() -> None:
            stopping = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
            sigterm_soon()
            await stopping.wait()
            drained.append("drained")

        asyncio.run(serve())

    async def worker(main_thread: MainThread) -> tuple[BaseException | None, bool]:
        outcome = await main_thread.start(main)
        return outcome, main_thread.stop_requested

    assert MainThread().run(worker) == (None, True)
    assert drained == ["drained"]
    assert signal.signal is original_signal


def test_a_server_on_uvloop_that_handles_sigterm_itself_is_noted_too() -> None:
    """uvloop's add_signal_handler bypasses signal.signal (uvicorn before 0.29 uses it)."""
    drained: list[str] = []

    def main() -> None:
        async def serve() -> None:
            stopping = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
            sigterm_soon()
            await stopping.wait()
            drained.append("drained")

        uvloop.run(serve())

    async def worker(main_thread: MainThread) -> tuple[BaseException | None, bool]:
        outcome = await main_thread.start(main)
        return outcome, main_thread.stop_requested

    assert MainThread().run(worker) == (None, True)
    assert drained == ["drained"]
    assert "add_signal_handler" not in uvloop.Loop.__dict__


def test_main_that_returns_by_itself_is_not_a_stop() -> None:
    async def worker(main_thread: MainThread) -> tuple[BaseException | None, bool]:
        outcome = await main_thread.start(lambda: None)
        return outcome, main_thread.stop_requested

    assert MainThread().run(worker) == (None, False)


def test_interrupt_asks_main_to_stop_like_a_signal() -> None:
    def main() -> None:
        time.sleep(30)

    async def worker(main_thread: MainThread) -> BaseException | None:
        finished = main_thread.start(main)
        await asyncio.sleep(0.3)
        main_thread.interrupt()
        return await asyncio.wait_for(finished, timeout=5)

    assert isinstance(MainThread().run(worker), KeyboardInterrupt)


def test_sigterm_while_no_main_runs_stops_the_worker() -> None:
    async def worker(main_thread: MainThread) -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        main_thread.on_stop(lambda: loop.call_soon_threadsafe(stop.set))
        sigterm_soon()
        await asyncio.wait_for(stop.wait(), timeout=5)
        # A main() asked for after the stop is not started.
        outcome = await main_thread.start(lambda: pytest.fail("main() ran after the stop"))
        return f"stopped, main() outcome {outcome}"

    assert MainThread().run(worker) == "stopped, main() outcome None"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_processes_that_hooks_start_can_be_stopped_with_sigterm() -> None:
    """A signal mask of the loop's thread would be inherited by the processes started there."""

    async def worker(main_thread: MainThread) -> str:
        status = await asyncio.to_thread(
            subprocess.run, ["cat", "/proc/self/status"], capture_output=True, text=True
        )
        return status.stdout

    status = MainThread().run(worker)
    blocked = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    assert blocked & (1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1)) == 0


def test_what_the_worker_raises_is_raised_on_the_main_thread() -> None:
    async def worker(main_thread: MainThread) -> None:
        raise ValueError("no executor 'x' in the plan")

    with pytest.raises(ValueError, match="no executor 'x'"):
        MainThread().run(worker)


async def test_run_refuses_other_threads() -> None:
    async def worker(main_thread: MainThread) -> None:
        pass

    with pytest.raises(RuntimeError, match="from the main thread"):
        await asyncio.to_thread(MainThread().run, worker)


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_a_closing_server_loop_leaves_no_moment_of_the_default_sigterm(
    loop_factory: object,
) -> None:
    # A server on its own loop (Hypercorn under asyncio.run, uvloop.run) drains after SIGTERM,
    # then its loop closes and puts Python's default back while main() is still finishing: a
    # second SIGTERM then (a supervisor's) killed the worker with -15. Once a stop was asked,
    # the signal is ignored instead, from the moment the loop gives it up.
    seen: list[object] = []

    def main() -> None:
        async def serve() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            sigterm_soon(0.1)
            await stop.wait()

        loop = loop_factory()  # type: ignore[operator]
        try:
            loop.run_until_complete(serve())
        finally:
            loop.close()
        seen.append(signal.getsignal(signal.SIGTERM))

    async def worker(main_thread: MainThread) -> BaseException | None:
        return await main_thread.start(main)

    assert MainThread().run(worker) is None
    assert seen == [signal.SIG_IGN]
