"""The supervisor of ``sluice run``: restarts, and the last error line of each child."""

from __future__ import annotations

import asyncio
import sys

from workers.supervisor import ChildSpec, ErrorLines, Supervisor

CRASH = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("lib").error("a library complained")
print("doing fine", flush=True)
import module_that_does_not_exist
"""


async def test_a_crashing_child_is_restarted_and_its_error_line_kept() -> None:
    printed: list[tuple[str, str]] = []
    supervisor = Supervisor(
        [ChildSpec("crash", [sys.executable, "-c", CRASH])],
        printer=lambda name, line: printed.append((name, line)),
        backoff=(0.05, 0.05),
        grace=5,
    )
    await supervisor.start()
    try:
        for _ in range(300):
            if supervisor.failures("crash") >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await supervisor.stop()
    assert supervisor.failures("crash") >= 2
    assert supervisor.why_failed("crash") == (
        "ModuleNotFoundError: No module named 'module_that_does_not_exist'"
    )
    assert ("crash", "doing fine") in printed


async def test_without_an_error_line_the_last_line_says_why() -> None:
    supervisor = Supervisor(
        [ChildSpec("quiet", [sys.executable, "-c", "print('bad config'); raise SystemExit(3)"])],
        printer=lambda name, line: None,
        backoff=(5, 5),
    )
    assert supervisor.why_failed("quiet") is None
    await supervisor.start()
    try:
        for _ in range(200):
            if supervisor.failures("quiet"):
                break
            await asyncio.sleep(0.05)
    finally:
        await supervisor.stop()
    assert supervisor.why_failed("quiet") == "bad config"


def test_error_lines() -> None:
    lines = ErrorLines()
    lines.feed("INFO sluice.worker: starting")
    assert lines.last_error is None
    lines.feed("ERROR sluice.worker: agent x (className m.C): module m not found")
    assert lines.last_error == "agent x (className m.C): module m not found"
    # A chained traceback: the last exception line wins, and frames are not error lines.
    for line in [
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in <module>',
        "    ERROR x: code of a frame",
        "KeyError: 'k'",
    ]:
        lines.feed(line)
    assert lines.last_error == "KeyError: 'k'"
    for line in [
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "a.py", line 3, in <module>',
        "RuntimeError: second",
        "INFO sluice.worker: stopped",
    ]:
        lines.feed(line)
    assert lines.last_error == "RuntimeError: second"
    assert lines.last_line == "INFO sluice.worker: stopped"


async def test_a_child_that_exits_with_0_is_finished_not_restarted() -> None:
    printed: list[tuple[str, str]] = []
    supervisor = Supervisor(
        [ChildSpec("done", [sys.executable, "-c", "print('all done')"])],
        printer=lambda name, line: printed.append((name, line)),
        backoff=(0.05, 0.05),
    )
    await supervisor.start()
    try:
        for _ in range(200):
            if supervisor.finished("done"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        await supervisor.stop()
    assert supervisor.finished("done")
    assert (supervisor.failures("done"), supervisor.restarts("done")) == (0, 0)
    assert printed == [("done", "all done"), ("done", "exited")]
