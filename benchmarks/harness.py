"""What the gateway scenarios share: processes under test, /proc accounting, wrk, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sluice.net import free_port

APP_DIR = Path(__file__).parent / "apps" / "gateway"
APP = "gateway"
TENANT = "default"
GATEWAY_CPU = "0"
"""The gateway process is pinned here (``taskset``); load generators go to ``CLIENT_CPU``."""
CLIENT_CPU = "1"
SERVER_OPTIONS: list[str] = []
"""Extra ``benchmarks.gateway_server`` options for every gateway started (``--loop asyncio``)."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pin(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if os.cpu_count() and os.cpu_count() != 1 else []


@dataclass
class Process:
    """A process under test: ``pid`` for /proc, ``url`` once it serves."""

    process: asyncio.subprocess.Process
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_kib(self.pid)


@contextlib.asynccontextmanager
async def gateway(
    bootstrap: str, *, noop: bool = False, server: str = "hypercorn"
) -> AsyncIterator[Process]:
    """A gateway process serving the benchmark app (pinned to ``GATEWAY_CPU``)."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="sluice-bench-gw-", suffix=".log")[1])
    argv = [
        *pin(GATEWAY_CPU),
        sys.executable,
        "-m",
        "benchmarks.gateway_server",
        "--app",
        str(APP_DIR),
        "--bootstrap-servers",
        bootstrap,
        "--port",
        str(port),
        *(["--noop"] if noop else []),
        "--server",
        server,
        *SERVER_OPTIONS,
    ]
    with log_path.open("wb") as log:  # noqa: ASYNC230 (once, before the measurement)
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        if not line.startswith(b"ready "):
            raise RuntimeError(f"gateway did not start; see {log_path}")
        yield Process(process, line.split()[1].decode())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


async def state(gw: Process) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        body: dict[str, Any] = (await client.get(f"{gw.url}/bench/state")).json()
        return body


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


async def wrk(
    url: str, body: bytes, content_type: str, *, seconds: float, connections: int = 64
) -> WrkResult:
    """Closed-loop peak with ``wrk -t1 -c<connections>`` POSTing ``body`` (keep-alive).

    Without wrk (it is a Debian package, not a Python one) an aiohttp closed loop with the same
    number of connections stands in: slower, so only good for a smoke run."""
    if not have_wrk():
        return await _aiohttp_closed_loop(url, body, content_type, seconds, connections)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        (Path(tmp) / "body").write_bytes(body)
        script.write_text(
            f'local f = io.open("{tmp}/body", "rb")\n'
            "wrk.body = f:read('*a')\nf:close()\n"
            'wrk.method = "POST"\n'
            f'wrk.headers["Content-Type"] = "{content_type}"\n'
        )
        argv = [
            *pin(CLIENT_CPU),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out = (await process.communicate())[0].decode()
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if requests is None or rate is None:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return WrkResult(
        requests=int(requests.group(1)),
        seconds=_ms(requests.group(2) + requests.group(3)) / 1000,
        requests_per_second=float(rate.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
    )


def gateway_url(gw: Process, kind: str, gateway_id: str, *, ws: bool = False) -> str:
    if ws:
        return f"{gw.url.replace('http', 'ws', 1)}/v1/{kind}/{TENANT}/{APP}/{gateway_id}"
    return f"{gw.url}/api/gateways/{kind}/{TENANT}/{APP}/{gateway_id}"


async def _aiohttp_closed_loop(
    url: str, body: bytes, content_type: str, seconds: float, connections: int
) -> WrkResult:
    import time

    import aiohttp

    latencies: list[float] = []
    non_2xx = errors = 0
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": content_type}
    connector = aiohttp.TCPConnector(limit=connections)
    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal non_2xx, errors
            while time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status >= 400:
                            non_2xx += 1
                except (aiohttp.ClientError, OSError):
                    errors += 1
                    continue
                latencies.append((time.monotonic() - start) * 1000)

        await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.monotonic() - began
    return WrkResult(
        requests=len(latencies) + non_2xx,
        seconds=elapsed,
        requests_per_second=(len(latencies) + non_2xx) / elapsed,
        non_2xx=non_2xx,
        errors=errors,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
    )
