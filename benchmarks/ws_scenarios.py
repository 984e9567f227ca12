"""W1 (WebSocket produce against an echo) and W2 (idle consumers fan-out)."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import websockets

from benchmarks.harness import gateway, gateway_url, pin, spread, state
from sluice.kafka import KafkaSettings, Producer
from sluice.record import Record

MESSAGE = json.dumps(
    {"key": "k1", "value": {"question": "what is the answer?" * 8, "session": "s1"}}
)


@dataclass(frozen=True)
class WsSample:
    variant: str
    repetition: int
    messages: int
    seconds: float
    messages_per_second: float
    cpu_seconds: float
    bad_replies: int


async def drive(url: str, connections: int, seconds: float, check: bool = True) -> tuple[int, int]:
    """Each connection sends a frame and waits for its answer, until ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    counts = [0] * connections
    bad = [0] * connections

    async def one(index: int, ws: websockets.ClientConnection) -> None:
        while time.monotonic() < deadline:
            await ws.send(MESSAGE)
            answer = await ws.recv()
            counts[index] += 1
            if check and json.loads(answer).get("status") != "OK":
                bad[index] += 1

    sockets = [await websockets.connect(url, ping_interval=None) for _ in range(connections)]
    try:
        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
    return sum(counts), sum(bad)


async def w1(bootstrap: str, *, seconds: float, repetitions: int) -> dict[str, Any]:
    samples: list[WsSample] = []
    async with gateway(bootstrap) as gw:
        produce = gateway_url(gw, "produce", "ingest", ws=True)
        echo = gw.url.replace("http", "ws", 1) + "/bench/echo"
        warm = min(2.0, seconds / 2)
        await drive(produce, 50, warm, True)
        await drive(echo, 50, warm, False)
        for rep in range(repetitions):
            order = [("echo", echo), ("produce", produce)]
            if rep % 2:
                order.reverse()
            for variant, url in order:
                before, began = gw.cpu(), time.monotonic()
                count, bad = await drive(url, 50, seconds, variant == "produce")
                elapsed = time.monotonic() - began
                sample = WsSample(
                    variant, rep, count, elapsed, count / elapsed, gw.cpu() - before, bad
                )
                print(
                    f"  W1 {variant:8} #{rep}: {sample.messages_per_second:8.0f} msgs/s, "
                    f"{sample.cpu_seconds / max(1, count) * 1e6:.0f} us CPU/msg, bad {bad}",
                    flush=True,
                )
                samples.append(sample)
    subject = spread([s.messages_per_second for s in samples if s.variant == "produce"])
    baseline = spread([s.messages_per_second for s in samples if s.variant == "echo"])
    ratio = subject["median"] / baseline["median"]

    def cpu(variant: str) -> dict[str, float]:
        return spread([s.cpu_seconds / max(1, s.messages) for s in samples if s.variant == variant])

    bad = sum(s.bad_replies for s in samples)
    return {
        "id": "W1",
        "scenario": "WebSocket produce, 50 connections, each frame answered before the next "
        "(permessage-deflate negotiated)",
        "baseline": "WebSocket echo route on the same gateway process, no Kafka (same run)",
        "load_generator": "python websockets client (asyncio), one process",
        "unit": "msgs/s",
        "subject": subject,
        "baseline_figure": baseline,
        "ratio": ratio,
        "cpu_seconds_per_request": {"subject": cpu("produce"), "baseline": cpu("echo")},
        "bad_replies": bad,
        "target": ">= 0.6x echo msgs/s",
        "met": ratio >= 0.6 and bad == 0,
        "samples": [asdict(s) for s in samples],
    }


class Clients:
    """A ``benchmarks.ws_clients`` process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self, within: float) -> str:
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), within)).decode()

    async def report(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        body: dict[str, Any] = json.loads(await self.line(120))
        return body

    async def quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        try:
            await asyncio.wait_for(self.process.wait(), 120)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def _fan_step(
    producer: Producer, clients: list[Clients], connected: int, rate: float, seconds: float
) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    start = time.monotonic()
    for seq in range(count):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await producer.send("fan", Record({"t": time.time(), "seq": seq}), source="/bench/w2")
    # Deliveries may lag: wait up to 10 s for all of them.
    reports: list[dict[str, Any]] = []
    received = 0
    expected = count * connected
    waited = time.monotonic()
    merged: list[dict[str, Any]] = []
    while time.monotonic() - waited < 10:
        await asyncio.sleep(1)
        reports = [await c.report() for c in clients]
        merged.extend(reports)
        received += sum(r["received"] for r in reports)
        if received >= expected:
            break
    p99 = max((r["p99"] for r in merged if r["received"]), default=float("nan"))
    p50 = statistics.median([r["p50"] for r in merged if r["received"]] or [float("nan")])
    worst = max((r["max"] for r in merged if r["received"]), default=float("nan"))
    sustained = received >= expected and p99 <= 1.0
    return {
        "rate_events_per_second": rate,
        "frames_per_second": rate * connected,
        "events": count,
        "expected_deliveries": expected,
        "deliveries": received,
        "p50_s_approx": p50,
        "p99_s": p99,
        "max_s": worst,
        "sustained": sustained,
    }


async def _fan_out(
    bootstrap: str, connections: int, processes: int, rates: list[float], seconds: float
) -> dict[str, Any]:
    async with gateway(bootstrap) as gw, Producer(KafkaSettings(bootstrap)) as producer:
        url = gateway_url(gw, "consume", "fan", ws=True)
        rss_before = gw.rss()
        state_before = await state(gw)
        clients: list[Clients] = []
        began = time.monotonic()
        try:
            for index in range(processes):
                share = connections // processes + (index < connections % processes)
                process = await asyncio.create_subprocess_exec(
                    *pin("1"),
                    sys.executable,
                    "-m",
                    "benchmarks.ws_clients",
                    url,
                    str(share),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                clients.append(Clients(process))
            connected = 0
            extensions = None
            for c in clients:
                _, count, negotiated = (await c.line(900)).split(" ", 2)
                connected += int(count)
                extensions = json.loads(negotiated)
            connect_seconds = time.monotonic() - began
            await asyncio.sleep(2)
            rss_after = gw.rss()
            after = await state(gw)
            print(
                f"  W2 {connections}: {connected} connected in {connect_seconds:.0f}s, "
                f"RSS {rss_before} -> {rss_after} KiB, state {after}",
                flush=True,
            )
            steps = []
            cpu_before = gw.cpu()
            for rate in rates:
                step = await _fan_step(producer, clients, connected, rate, seconds)
                print(
                    f"  W2 {connections} at {rate:g} ev/s: {step['deliveries']}/"
                    f"{step['expected_deliveries']} p99 {step['p99_s']:.3f}s",
                    flush=True,
                )
                steps.append(step)
                if not step["sustained"]:
                    break
            cpu = gw.cpu() - cpu_before
            deliveries = sum(s["deliveries"] for s in steps)
            final = await state(gw)
        finally:
            for c in clients:
                await c.quit()
    best = max(
        (s for s in steps if s["sustained"]),
        key=lambda s: s["rate_events_per_second"],
        default=None,
    )
    return {
        "connections": connections,
        "connected": connected,
        "client_processes": processes,
        "negotiated_extensions": extensions,
        "connect_seconds": connect_seconds,
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "rss_kib_per_connection": (rss_after - rss_before) / max(1, connected),
        "state_before": state_before,
        "state_connected": after,
        "state_end": final,
        "kafka_consumers_in_gateway": after["kafka_consumers"],
        "fanout_topics": list(after["fanouts"]),
        "steps": steps,
        "highest_sustained": best,
        "cpu_seconds_per_delivery": cpu / max(1, deliveries),
    }


async def w2(
    bootstrap: str, sizes: list[int], rates: list[float], seconds: float
) -> dict[str, Any]:
    runs = []
    for size in sizes:
        runs.append(await _fan_out(bootstrap, size, max(1, size // 5000), rates, seconds))
    small, large = runs[0], runs[-1]
    one_consumer = all(r["kafka_consumers_in_gateway"] == 1 for r in runs)
    rss_ok = all(r["rss_kib_per_connection"] <= 150 for r in runs)
    p99_ok = all(r["highest_sustained"] is not None for r in runs)
    return {
        "id": "W2",
        "scenario": "consume fan-out: idle WebSocket consumers on one topic "
        "(permessage-deflate negotiated)",
        "baseline": f"{small['connections']} vs {large['connections']} connections",
        "load_generator": "python websockets clients, 1 process per 5,000 connections",
        "runs": runs,
        "ratio_rss_per_connection": large["rss_kib_per_connection"]
        / max(1e-9, small["rss_kib_per_connection"]),
        "target": "Kafka consumers in the gateway stay 1 per topic; RSS <= 150 KiB per "
        "connection; delivery p99 <= 1 s at the highest sustained rate (reported)",
        "met": one_consumer and rss_ok and p99_ok,
    }
