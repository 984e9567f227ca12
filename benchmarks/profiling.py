"""Where a gateway scenario's CPU goes: py-spy samples the gateway process under load.

``python -m benchmarks.profiling --scenario S --bootstrap-servers B [--seconds N] [--out DIR]``,
S one of t1, t1-noop, t1b, w1, w1-echo, c1-1 (C1 at one client), t4, w2 (``--connections``
idle consumers, ``--rate`` events per second on their topic), t3 (the identity worker of T3,
sampled while it works through ``--records`` pre-filled records), b2 (B2's embeddings worker,
likewise; onnxruntime's own threads show as the Python frame that called the model).

Starts the benchmark gateway (as ``python -m benchmarks`` does), drives the scenario's load for
``--seconds`` while ``py-spy record`` samples the gateway (native frames off, idle excluded), and
prints the top frames by own time, by inclusive time and by package of the leaf frame. The
collapsed stacks are kept in ``--out`` for a flame graph. py-spy is the PyPI package (``bench``
extra); sampling needs ptrace rights over the gateway (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import gateway, gateway_url, wrk
from benchmarks.http_scenarios import BATCH, JSON, ONE, until_served
from benchmarks.worker_runs import app_worker
from sluice.eventloop import run

__all__ = ["Profile", "read_collapsed"]

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class Profile:
    """Samples as collapsed stacks: ``frame;frame;... count`` lines."""

    def __init__(self, stacks: Counter[tuple[str, ...]]) -> None:
        self.stacks = stacks
        self.total = sum(stacks.values())

    def own(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            counts[_short(stack[-1])] += n
        return counts

    def inclusive(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            for frame in {_short(f) for f in stack}:
                counts[frame] += n
        return counts

    def packages(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            counts[_package(stack[-1])] += n
        return counts

    def report(self, top: int = 25) -> dict[str, Any]:
        def share(counts: Counter[str]) -> list[tuple[str, float]]:
            return [(name, round(100 * n / self.total, 1)) for name, n in counts.most_common(top)]

        return {
            "samples": self.total,
            "by_package_of_leaf_pct": share(self.packages()),
            "own_pct": share(self.own()),
            "inclusive_pct": share(self.inclusive()),
        }


def read_collapsed(text: str) -> Profile:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = tuple(f for f in stack.split(";") if f and not f.startswith("process "))
            frames = tuple(f for f in frames if not f.startswith("thread "))
            if frames:
                stacks[frames] += int(count)
    return Profile(stacks)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(path.split("/")[-2:])
    return f"{match.group('function')} ({path})"


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)
        return f"stdlib {module[1].removesuffix('.py')}" if len(module) > 1 else "stdlib"
    parts = path.split("/")
    for package in ("gateway", "sluice", "auth", "benchmarks", "workers"):
        if package in parts:
            return package
    return path


async def _load(scenario: str, gw_url: str, ws_url: str, seconds: float) -> None:
    from benchmarks.ws_scenarios import drive

    if scenario in ("t1", "t1-noop"):
        await wrk(gw_url, ONE, JSON, seconds=seconds, connections=64)
    elif scenario == "t1b":
        await wrk(gw_url, BATCH, JSON, seconds=seconds, connections=8)
    elif scenario == "c1-1":
        await wrk(gw_url, ONE, JSON, seconds=seconds, connections=1)
    elif scenario in ("w1", "w1-echo"):
        await drive(ws_url, 50, seconds, check=False)
    elif scenario == "t4":
        body = json.dumps({"value": {"n": 1}}).encode()
        await wrk(gw_url, body, JSON, seconds=seconds, connections=16)
    else:
        raise ValueError(f"no load for scenario {scenario}")


async def _fan(args: argparse.Namespace, url: str, spy: Callable[[], Awaitable[None]]) -> None:
    """W2's load: idle consumers in a client process, then (sampled) events at ``--rate``."""
    from benchmarks.harness import pin
    from benchmarks.ws_scenarios import Clients
    from sluice.kafka import KafkaSettings, Producer
    from sluice.record import Record

    process = await asyncio.create_subprocess_exec(
        *pin("1"),
        sys.executable,
        "-m",
        "benchmarks.ws_clients",
        url,
        str(args.connections),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    clients = Clients(process)
    try:
        await clients.line(600)
        async with Producer(KafkaSettings(args.bootstrap_servers)) as producer:
            sampling = asyncio.ensure_future(spy())
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for seq in range(int(args.rate * args.seconds)):
                await asyncio.sleep(max(0.0, start + seq / args.rate - loop.time()))
                record = Record({"t": 0, "seq": seq})
                await producer.send("fan", record, source="/bench/profile")
            await sampling
    finally:
        await clients.quit()


async def _worker(args: argparse.Namespace, raw: Path) -> None:
    """Sample a real worker (python -m workers) reading a pre-filled topic: T3's identity
    python-processor, or B2's compute-ai-embeddings on the local model."""
    from benchmarks import b2, t3
    from benchmarks.worker_runs import fill, new_topics, running, worker_argv

    inp, out = await new_topics(args.bootstrap_servers, f"{args.scenario}p", "in", "out")
    records = args.records or (60_000 if args.scenario == "t3" else 3000)
    value_of = t3.value_of if args.scenario == "t3" else b2.value_of
    await fill(args.bootstrap_servers, inp, records, value_of)
    with tempfile.TemporaryDirectory(prefix="sluice-prof-") as tmp:
        if args.scenario == "t3":
            app, executor = t3.write_app(Path(tmp) / "app", inp, out), "identity"
        else:
            app, executor = b2.write_app(Path(tmp) / "app", inp, out), b2.EXECUTOR
        argv = worker_argv(app, executor, args.bootstrap_servers, Path(tmp) / "state")
        async with running(argv) as worker:
            await _record(args, worker.pid, raw)


async def _record(args: argparse.Namespace, pid: int, raw: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        args.py_spy,
        "record",
        "--format",
        "raw",
        "--rate",
        "200",
        "--duration",
        str(int(args.seconds)),
        "--pid",
        str(pid),
        "--output",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")


async def profile(args: argparse.Namespace) -> Profile:
    noop = args.scenario in ("t1-noop",)
    raw = args.out / f"{args.scenario}.collapsed.txt"
    if args.scenario in ("t3", "b2"):
        await _worker(args, raw)
        return read_collapsed(raw.read_text())
    async with contextlib.AsyncExitStack() as stack:
        gw = await stack.enter_async_context(
            gateway(args.bootstrap_servers, noop=noop, server=args.server)
        )
        kind, gateway_id = {"t4": ("service", "echo")}.get(args.scenario, ("produce", "ingest"))
        url = gateway_url(gw, kind, gateway_id)
        if args.scenario == "t4":
            # T4's identity worker answers the service requests.
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sluice-prof-"))
            await stack.enter_async_context(
                app_worker(args.bootstrap_servers, "identity", Path(tmp) / "state")
            )
            await until_served(url)
        ws = gateway_url(gw, "produce", "ingest", ws=True)
        if args.scenario == "w1-echo":
            ws = gw.url.replace("http", "ws", 1) + "/bench/echo"
        if args.scenario != "w2":
            await _load(args.scenario, url, ws, 2)  # warm-up

        async def spy() -> None:
            await _record(args, gw.pid, raw)

        if args.scenario == "w2":
            await _fan(args, gateway_url(gw, "consume", "fan", ws=True), spy)
        else:
            sampling = asyncio.ensure_future(spy())
            await asyncio.sleep(0.5)
            await _load(args.scenario, url, ws, args.seconds)
            await sampling
    return read_collapsed(raw.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--server", choices=("hypercorn", "uvicorn"), default="hypercorn")
    parser.add_argument("--out", type=Path, default=Path("profiles"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--connections", type=int, default=2000, help="w2: idle consumers")
    parser.add_argument("--rate", type=float, default=5, help="w2: events per second")
    parser.add_argument(
        "--records", type=int, help="t3, b2: records to work on (default 60,000; b2 3,000)"
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(profile(args)).report(args.top)
    (args.out / f"{args.scenario}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.scenario}: {result['samples']} samples")
    for section in ("by_package_of_leaf_pct", "own_pct", "inclusive_pct"):
        print(f"\n{section}:")
        for name, pct in result[section]:
            print(f"  {pct:5.1f}%  {name}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
