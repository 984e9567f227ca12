"""The process's main thread lent to a python-service's ``main()``; the worker's loop beside it.

A LangStream service's ``main()`` starts its own server the plain way: ``uvicorn.run(...)``,
``asyncio.run(hypercorn.asyncio.serve(app, config))``, Quart's ``app.run()``,
``HTTPServer(...).serve_forever()``. Such servers install signal handlers, which Python allows
only on the main thread, and LangStream ran ``main()`` as the main thread of the service's own
process. So in the worker of a service executor, :meth:`MainThread.run` runs the worker's event
loop (Kafka producer, the agent's hooks, the health endpoints) in a daemon thread and keeps the
main thread waiting until the worker asks it, with :meth:`MainThread.start`, to run ``main()``.

Signals go to the main thread only (the loop's thread blocks them, and so do the threads it
starts). While no ``main()`` runs, SIGTERM and SIGINT ask the worker to stop (:meth:`on_stop`).
While ``main()`` runs they reach the handlers its server installed, so it drains as it would
alone; a ``main()`` whose server installed none gets KeyboardInterrupt, for SIGTERM as Ctrl-C
gives it for SIGINT, which ends a plain ``serve_forever()``.

The worker must tell a ``main()`` that ended because it was asked to stop from one that ended by
itself (a crash). A server that takes the signal over usually returns normally after draining,
so during ``main()`` every handler installed with ``signal.signal`` for SIGTERM or SIGINT is
wrapped to note the stop request before it runs. asyncio's ``loop.add_signal_handler`` installs
its handlers that way too, which covers Hypercorn and Quart; uvicorn restores the previous
handlers and raises the signal again, which reaches the worker's own. An event loop that binds
``signal.signal`` before ``main()`` starts (uvloop, driven directly) escapes the wrapping: its
``main()`` returning after a signal counts as ending by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from sluice import eventloop

log = logging.getLogger("sluice.worker")

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_ABANDON_AFTER = 1.0
"""Seconds the loop's thread waits, once finished, for the main thread to take the result; a
``main()`` that ignored the stop request holds the main thread, and the process ends anyway."""

SignalHandler = Callable[[int, FrameType | None], Any]


@dataclass(frozen=True)
class _Call:
    function: Callable[[], None]
    report: Callable[[BaseException | None], None]


@dataclass(frozen=True)
class _Finished:
    result: Any = None
    error: BaseException | None = None


class MainThread:
    """Runs a worker coroutine on an event loop in a daemon thread, and lends it this thread.

    ::

        async def worker(main_thread: MainThread) -> None:
            main_thread.on_stop(...)
            outcome = await main_thread.start(service_main)

        MainThread().run(worker)
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_Call | _Finished] = queue.SimpleQueue()
        self._stop_requested = threading.Event()
        self._stop_callbacks: list[Callable[[], object]] = []
        self._in_main = False
        self._taken = threading.Event()
        self._handler: SignalHandler = self._on_signal

    @property
    def stop_requested(self) -> bool:
        """A stop was asked for: by a signal, or by :meth:`interrupt`."""
        return self._stop_requested.is_set()

    def run(self, worker: Callable[[MainThread], Coroutine[Any, Any, T]]) -> T:
        """Run ``worker(self)`` to its end (its result, or what it raised), from the main thread."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("MainThread.run() must be called from the main thread")
        previous = {sig: signal.signal(sig, self._handler) for sig in SIGNALS}
        try:
            thread = threading.Thread(
                target=self._loop_thread, args=(worker,), name="sluice-worker", daemon=True
            )
            # Started with the signals blocked, the thread and every thread it starts inherit
            # the block: the kernel then delivers them to this thread, which runs the handlers
            # and whose blocking calls they interrupt.
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            try:
                thread.start()
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            while True:
                request = self._requests.get()
                if isinstance(request, _Finished):
                    self._taken.set()
                    thread.join()
                    if request.error is not None:
                        raise request.error
                    result: T = request.result
                    return result
                self._call(request)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def on_stop(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (from a signal handler: it must be quick and thread-safe, such as
        ``loop.call_soon_threadsafe``) when a stop is requested; at once if one already was."""
        self._stop_callbacks.append(callback)
        if self.stop_requested:
            callback()

    def start(self, function: Callable[[], None]) -> asyncio.Future[BaseException | None]:
        """Run ``function`` on the main thread; the future gets what it raised, or None if it
        returned. From the worker's loop. Not run at all once a stop was requested."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[BaseException | None] = loop.create_future()

        def report(outcome: BaseException | None) -> None:
            if not finished.done():
                finished.set_result(outcome)

        def report_threadsafe(outcome: BaseException | None) -> None:
            # The loop is gone when the worker already ended: nobody waits for this any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(report, outcome)

        self._requests.put(_Call(function, report_threadsafe))
        return finished

    def interrupt(self) -> None:
        """Ask a running ``main()`` to stop as a signal would (SIGTERM to the main thread), unless
        a signal already did. For a stop that comes from elsewhere (the supervisor is gone)."""
        if self.stop_requested:
            return
        self._note_stop()
        ident = threading.main_thread().ident
        if ident is not None:
            signal.pthread_kill(ident, signal.SIGTERM)

    # Main thread --------------------------------------------------------------------------

    def _call(self, request: _Call) -> None:
        if self.stop_requested:
            request.report(None)
            return
        outcome: BaseException | None = None
        install = signal.signal
        try:
            try:
                self._in_main = True
                signal.signal = self._wrapping(install)
                request.function()
            finally:
                self._in_main = False
                signal.signal = install
                # A server may leave SIG_DFL behind (asyncio does): take the signals back.
                for sig in SIGNALS:
                    install(sig, self._handler)
        except BaseException as error:  # SystemExit of a server that could not start, too
            outcome = error
        request.report(outcome)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._note_stop()
        if self._in_main:
            # What Ctrl-C does to a program that installed no handler, for SIGTERM as well.
            signal.default_int_handler(signum, frame)

    def _wrapping(self, install: Callable[..., Any]) -> Callable[..., Any]:
        """``signal.signal`` whose SIGTERM and SIGINT handlers note the stop request first."""

        def signal_(signalnum: int, handler: Any) -> Any:
            if signalnum in SIGNALS and callable(handler) and handler is not self._handler:
                handler = self._noting(handler)
            return install(signalnum, handler)

        return signal_

    def _noting(self, handler: SignalHandler) -> SignalHandler:
        if getattr(handler, "_sluice_noting", False):
            return handler  # a server restoring the handler it replaced

        def noting(signum: int, frame: FrameType | None) -> Any:
            self._note_stop()
            return handler(signum, frame)

        noting._sluice_noting = True  # type: ignore[attr-defined]
        return noting

    def _note_stop(self) -> None:
        if self._stop_requested.is_set():
            return
        self._stop_requested.set()
        for callback in self._stop_callbacks:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                callback()

    # The loop's thread ---------------------------------------------------------------------

    def _loop_thread(self, worker: Callable[[MainThread], Coroutine[Any, Any, Any]]) -> None:
        finished: _Finished
        try:
            finished = _Finished(result=eventloop.run(worker(self)))
        except BaseException as error:
            finished = _Finished(error=error)
        self._requests.put(finished)
        if not self._taken.wait(_ABANDON_AFTER):
            # main() still holds the main thread after the worker finished (closing the agents
            # included): it ignored the stop request. End the process as its end would have.
            if finished.error is not None:
                log.error("%s", finished.error)
            log.warning("main() did not return: the worker exits without it")
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0 if finished.error is None else 1)
