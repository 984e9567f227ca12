"""The process's main thread lent to a python-service's ``main()``; the worker's loop beside it.

A LangStream service's ``main()`` starts its own server the plain way: ``uvicorn.run(...)``,
``asyncio.run(hypercorn.asyncio.serve(app, config))``, Quart's ``app.run()``,
``HTTPServer(...).serve_forever()``. Such servers install signal handlers, which Python allows
only on the main thread, and LangStream ran ``main()`` as the main thread of the service's own
process. So in the worker of a service executor, :meth:`MainThread.run` runs the worker's event
loop (Kafka producer, the agent's hooks, the health endpoints) in a daemon thread and keeps the
main thread waiting until the worker asks it, with :meth:`MainThread.start`, to run ``main()``.

Python runs signal handlers on the main thread. While no ``main()`` runs, SIGTERM and SIGINT
ask the worker to stop (:meth:`on_stop`). While ``main()`` runs they reach the handlers its
server installed, so it drains as it would alone; a ``main()`` whose server installed none gets
KeyboardInterrupt, for SIGTERM as Ctrl-C gives it for SIGINT, which ends a plain
``serve_forever()``. (Blocking the signals in the loop's thread instead would be inherited by
every process a hook starts from there, which would then ignore SIGTERM.)

The worker must tell a ``main()`` that ended because it was asked to stop from one that ended by
itself (a crash): a server that takes the signal over usually returns normally after draining.
So during ``main()`` the two ways Python code installs handlers are interposed, and the SIGTERM
and SIGINT handlers they install note the stop request before they run:

- ``signal.signal``: uvicorn since 0.29, asyncio's ``loop.add_signal_handler`` (Hypercorn,
  Quart), trio, plain handlers. uvicorn restores the previous handler and raises the signal
  again, which then reaches the worker's own.
- ``uvloop.Loop.add_signal_handler``: uvloop calls the ``signal.signal`` it bound at import, so
  a server on uvloop (uvicorn before 0.29, as LangStream's examples pin it, picks uvloop when
  it is installed; ``uvloop.run(serve(...))``) is seen here instead.

An event loop that installs handlers some other way escapes both: its ``main()`` returning
normally after a signal counts as ending by itself. When a server's loop closes it puts Python's
default handlers back while the server may still be finishing; through the same interposition
those become the worker's own (ignored once a stop was asked), so a repeated SIGTERM never finds
the default that would kill the worker half-way through its exit.
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

_POLL = 0.2
"""Seconds between the main thread's looks at the signals while it waits for the loop's thread."""

SignalHandler = Callable[[int, FrameType | None], Any]


def _no_undo() -> None:
    pass


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
            thread.start()
            while True:
                try:
                    # A timeout, because a signal the kernel gives another thread does not
                    # interrupt this wait, and Python runs its handler only here.
                    request = self._requests.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if isinstance(request, _Finished):
                    self._taken.set()
                    thread.join()
                    if request.error is not None:
                        raise request.error
                    result: T = request.result
                    return result
                self._call(request)
        finally:
            # After a stop the process only exits: a repeated stop signal (a supervisor's second
            # SIGTERM, a user's second Ctrl-C) must not kill it half-way through that exit.
            for sig, handler in previous.items():
                signal.signal(sig, signal.SIG_IGN if self.stop_requested else handler)

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
        undo_uvloop = _no_undo
        try:
            try:
                self._in_main = True
                signal.signal = self._wrapping(install)
                undo_uvloop = self._interpose_uvloop()
                request.function()
            finally:
                self._in_main = False
                signal.signal = install
                undo_uvloop()
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
            if signalnum in SIGNALS:
                handler = self._taking_back(handler)
            return install(signalnum, handler)

        return signal_

    def _taking_back(self, handler: Any) -> Any:
        """The handler to install for SIGTERM/SIGINT instead of ``handler`` during ``main()``.

        A server's own handler notes the stop request first. Python's defaults (what asyncio's
        and uvloop's loops put back when they close, while a server is still finishing) become
        the worker's: a repeated stop signal at that moment would otherwise kill the process
        half-way through its exit (SIGTERM's default), so once a stop was asked it is ignored.
        """
        if handler in (signal.SIG_DFL, signal.default_int_handler):
            return signal.SIG_IGN if self.stop_requested else self._handler
        if callable(handler) and handler is not self._handler:
            return self._noting(handler)
        return handler

    def _noting(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(handler, "_sluice_noting", False):
            return handler  # a server restoring the handler it replaced

        def noting(*args: Any) -> Any:
            self._note_stop()
            return handler(*args)

        noting._sluice_noting = True  # type: ignore[attr-defined]
        return noting

    def _interpose_uvloop(self) -> Callable[[], None]:
        """Wrap the SIGTERM/SIGINT callbacks of ``uvloop.Loop.add_signal_handler``; returns
        what undoes it. Nothing to do where uvloop is not installed."""
        try:
            import uvloop
        except ImportError:
            return _no_undo
        loop_class: Any = uvloop.Loop
        own = loop_class.__dict__.get("add_signal_handler")
        add = loop_class.add_signal_handler

        def add_signal_handler(loop: Any, sig: int, callback: Any, *args: Any) -> Any:
            if sig in SIGNALS and callable(callback):
                callback = self._noting(callback)
            return add(loop, sig, callback, *args)

        own_remove = loop_class.__dict__.get("remove_signal_handler")
        remove = loop_class.remove_signal_handler
        install = signal.signal

        def remove_signal_handler(loop: Any, sig: int) -> Any:
            if sig not in SIGNALS:
                return remove(loop, sig)
            # uvloop puts Python's default back with the signal.signal it bound at import: the
            # signal waits, blocked, until the worker's handler is back in place.
            signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
            try:
                removed = remove(loop, sig)
                install(sig, self._taking_back(signal.SIG_DFL))
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            return removed

        loop_class.add_signal_handler = add_signal_handler
        loop_class.remove_signal_handler = remove_signal_handler

        def undo() -> None:
            for name, original in (
                ("add_signal_handler", own),
                ("remove_signal_handler", own_remove),
            ):
                if original is None:
                    delattr(loop_class, name)
                else:
                    setattr(loop_class, name, original)

        return undo

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
