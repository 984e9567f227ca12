"""Running an example the way its README does: ``sluice run examples/NAME`` (tenant
``default``, the folder's name as the application id), on the test broker, with a free gateway
port and a fresh state directory; the example's topics are deleted afterwards so the next test
starts from empty topics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics
from sluice.net import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TENANT = "default"


@dataclass
class Example:
    """A running ``sluice run``: its gateway's base URL and everything it printed."""

    name: str
    process: asyncio.subprocess.Process
    gateway: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def ws(self) -> str:
        return self.gateway.replace("http://", "ws://", 1)

    def http_url(self, kind: str, gateway: str) -> str:
        return f"{self.gateway}/api/gateways/{kind}/{TENANT}/{self.name}/{gateway}"

    def ws_url(self, kind: str, gateway: str, query: str = "") -> str:
        return f"{self.ws}/v1/{kind}/{TENANT}/{self.name}/{gateway}{query}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def instance_file(directory: Path, bootstrap: str, globals_: dict[str, str] | None = None) -> Path:
    path = directory / "instance.yaml"
    text = (
        "instance:\n"
        "  streamingCluster:\n"
        "    type: kafka\n"
        "    configuration:\n"
        f"      admin: {{bootstrap.servers: '{bootstrap}'}}\n"
    )
    if globals_:
        text += "  globals:\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in globals_.items())
    path.write_text(text)
    return path


@asynccontextmanager
async def sluice_run(
    app_dir: Path,
    bootstrap: str,
    tmp_path: Path,
    extra: Sequence[str] = (),
    *,
    state_dir: Path | None = None,
    delete_topics_after: bool = True,
    environ: dict[str, str] | None = None,
    globals_: dict[str, str] | None = None,
) -> AsyncIterator[Example]:
    """``sluice run APP_DIR`` until the block ends; then Ctrl-C, which must exit 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app_dir),
        "-i",
        str(instance_file(tmp_path, bootstrap, globals_)),
        "--state-dir",
        str(state_dir or tmp_path / "state"),
        "--gateway-port",
        str(free_port()),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(environ or {}), "NO_COLOR": "1"},
        cwd=ROOT,
    )
    running = Example(app_dir.name, process)
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        ready = False
        while not ready:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=180)).decode()
            assert line, "sluice run ended early:\n" + running.output
            running.lines.append(line.rstrip())
            if line.startswith("gateway: "):
                running.gateway = line.strip().split(" ", 1)[1]
            ready = line.startswith("ready: kafka=")
        drain = asyncio.create_task(_drain(process, running.lines))
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=90)
        if drain is not None:
            await drain
        if delete_topics_after:
            secrets = extra[extra.index("-s") + 1] if "-s" in extra else None
            topics = load_application(
                app_dir, instance=tmp_path / "instance.yaml", secrets=secrets
            ).topics
            await delete_topics(KafkaSettings(bootstrap), list(topics))
    assert code == 0, running.output


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        lines.append(line.decode().rstrip())


async def receive_json(socket: ClientConnection, timeout: float = 30) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        return json.loads(await socket.recv())


async def run_cli(
    *args: str, stdin: bytes | None = None, within: float = 60
) -> tuple[int, str, str]:
    """``sluice ARGS...`` as a user types it; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
