"""A worker whose supervisor dies stops by itself instead of running for nobody."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from sluice.net import free_port
from tests.workers.conftest import prepare
from tests.workers.test_runtime import AGENTS, TOPICS

# A parent that starts the worker and exits at once, leaving it an orphan.
LAUNCHER = """
import os, subprocess, sys
env = {**os.environ, "SLUICE_SUPERVISOR_PID": str(os.getpid())}
worker = subprocess.Popen(sys.argv[1:], stdout=open(sys.argv[0] + ".log", "w"),
                          stderr=subprocess.STDOUT, start_new_session=True, env=env)
print(worker.pid, flush=True)
"""


def gone(pid: int) -> bool:
    """Whether ``pid`` ended (a zombie nobody reaped counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def wait_for(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").is_success
    except httpx.TransportError:
        return False


def orphan_and_wait(launcher: Path, worker: list[str], health: int) -> str:
    """Start ``worker`` through ``launcher`` (which exits at once); its log once it ended."""
    launched = subprocess.run(
        [sys.executable, str(launcher), *worker], capture_output=True, text=True, check=True
    )
    pid = int(launched.stdout)
    try:
        wait_for(lambda: healthy(health) or gone(pid), 60)
        wait_for(lambda: gone(pid), 60)
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    return Path(f"{launcher}.log").read_text()


async def test_an_orphaned_worker_drains_and_exits(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    app_dir = app_factory(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - {{id: p, type: python-processor, input: {inp}, output: {out}, configuration: {{className: agents.Suffix, suffix: -p}}}}
""",
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    health = free_port()
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    worker = [
        sys.executable, "-m", "workers", str(app_dir), "--executor", "p",
        "--bootstrap-servers", kafka_bootstrap, "--health-port", str(health),
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    log = await asyncio.to_thread(orphan_and_wait, launcher, worker, health)
    assert "is gone: stopping" in log
