"""T1, T1b (HTTP produce), T4 and T4b (service gateway round trips)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from benchmarks.harness import (
    Process,
    WrkResult,
    gateway,
    gateway_url,
    percentile,
    spread,
    state,
    wrk,
)
from benchmarks.loadgen import HttpClient
from benchmarks.worker_runs import app_worker

RECORD = {"key": "k1", "value": {"question": "what is the answer?" * 8, "session": "s1", "n": 1}}
ONE = json.dumps(RECORD).encode()
BATCH = json.dumps([RECORD] * 100).encode()
JSON = "application/json"
PEAK_CONNECTIONS = 64
LATENCY_FRACTIONS = (0.8, 0.5, 0.25)
"""Open-loop rates, as fractions of the repetition's closed-loop peak; 0.8 is the target's."""


@dataclass(frozen=True)
class Peak:
    variant: str
    repetition: int
    wrk: WrkResult
    cpu_seconds: float

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / max(1, self.wrk.requests)


async def measure_peak(
    variant: str, repetition: int, gw: Process, url: str, body: bytes, seconds: float, conns: int
) -> Peak:
    before = gw.cpu()
    result = await wrk(url, body, JSON, seconds=seconds, connections=conns)
    peak = Peak(variant, repetition, result, gw.cpu() - before)
    print(
        f"  {variant:14} #{repetition}: {result.requests_per_second:8.1f} req/s, "
        f"non-2xx {result.non_2xx}, {peak.cpu_per_request * 1e6:.0f} us CPU/req",
        flush=True,
    )
    return peak


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    seconds: float
    sent: int
    ok: int
    failed: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float


Call = Callable[[HttpClient, int], Awaitable[bool]]


async def open_loop(
    gw: Process, call: Call, rate: float, seconds: float, connections: int = 1000
) -> OpenLoop:
    """Requests started at fixed times (``rate`` per second), each latency measured from its
    scheduled start, so a stall shows in the figures (no coordinated omission)."""
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    failures = 0

    async with HttpClient(gw.url, limit=connections) as session:

        async def one(i: int, due: float) -> None:
            nonlocal failures
            try:
                ok = await call(session, i)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                ok = False
            if ok:
                latencies.append(time.monotonic() - due)
            else:
                failures += 1

        before = gw.cpu()
        start = time.monotonic() + 0.05
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        cpu = gw.cpu() - before
    ms = [x * 1000 for x in latencies]
    return OpenLoop(
        rate,
        seconds,
        count,
        len(latencies),
        failures,
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        percentile(ms, 0.99),
        max(ms, default=float("nan")),
        cpu,
    )


def _post(url: str, body: bytes) -> Call:
    target = urlsplit(url)._replace(scheme="", netloc="").geturl()
    prepared: bytes | None = None

    async def call(client: HttpClient, i: int) -> bool:
        nonlocal prepared
        if prepared is None:
            prepared = client.prepare("POST", target, body, JSON)
        status, _ = await client.send(prepared)
        return status == 200

    return call


async def t1(
    bootstrap: str,
    *,
    seconds: float,
    repetitions: int,
    fractions: tuple[float, ...] = LATENCY_FRACTIONS,
) -> list[dict[str, Any]]:
    peaks: list[Peak] = []
    loops: list[OpenLoop] = []
    noop_loops: list[OpenLoop] = []
    ladder: list[dict[str, Any]] = []
    async with gateway(bootstrap) as kafka_gw, gateway(bootstrap, noop=True) as noop_gw:
        kafka_url = gateway_url(kafka_gw, "produce", "ingest")
        noop_url = gateway_url(noop_gw, "produce", "ingest")
        # Warm-up: connections, the producer's metadata, Quart's first-request work.
        warm = min(2.0, seconds / 2)
        await wrk(kafka_url, ONE, JSON, seconds=warm)
        await wrk(noop_url, ONE, JSON, seconds=warm)
        await wrk(kafka_url, BATCH, JSON, seconds=warm, connections=8)
        for rep in range(repetitions):
            order = [("noop", noop_gw, noop_url), ("kafka", kafka_gw, kafka_url)]
            if rep % 2:
                order.reverse()
            for variant, gw, url in order:
                peaks.append(
                    await measure_peak(variant, rep, gw, url, ONE, seconds, PEAK_CONNECTIONS)
                )
            peaks.append(
                await measure_peak("kafka-batch100", rep, kafka_gw, kafka_url, BATCH, seconds, 8)
            )
            peak = next(p for p in peaks if p.variant == "kafka" and p.repetition == rep)
            # 80% of this repetition's peak, then lower fractions (where the Python open-loop
            # client and the broker, sharing the other core, are no longer saturated); each rate
            # also against the no-op app: the framework's own latency at that load.
            for fraction in fractions:
                rate = fraction * peak.wrk.requests_per_second
                for variant, gw, url in order:
                    # Over the peak's 64 connections (as wrk2 -c64 -R does): requests queue for
                    # a connection, their latency still counted from their scheduled time.
                    loop = await open_loop(gw, _post(url, ONE), rate, seconds, PEAK_CONNECTIONS)
                    print(
                        f"  open loop {variant} {fraction:.0%} {rate:.0f}/s #{rep}: p50 "
                        f"{loop.p50_ms:.1f} ms, p99 {loop.p99_ms:.1f} ms, failed {loop.failed}",
                        flush=True,
                    )
                    if fraction == fractions[0]:
                        (loops if variant == "kafka" else noop_loops).append(loop)
                    ladder.append({"variant": variant, "fraction": fraction, **asdict(loop)})

    def rates(variant: str, factor: float = 1) -> list[float]:
        return [p.wrk.requests_per_second * factor for p in peaks if p.variant == variant]

    def cpu(variant: str) -> dict[str, float]:
        return spread([p.cpu_per_request for p in peaks if p.variant == variant])

    kafka, noop = spread(rates("kafka")), spread(rates("noop"))
    batch_records = spread(rates("kafka-batch100", 100))
    ratio = kafka["median"] / noop["median"]
    p99 = spread([x.p99_ms for x in loops])
    batch_ratio = batch_records["median"] / kafka["median"]
    generator = (
        "wrk -t1 -c64 (closed loop, keep-alive); open loop for latency: benchmarks.loadgen "
        "(asyncio keep-alive HTTP/1.1 client) over 64 connections, latency from each request's "
        "scheduled time"
    )
    return [
        {
            "id": "T1",
            "scenario": "HTTP produce: POST -> CloudEvent -> Kafka ack (acks=all) -> 200",
            "baseline": "the same gateway app, producer replaced by a no-op (same run)",
            "load_generator": generator,
            "unit": "req/s",
            "subject": kafka,
            "baseline_figure": noop,
            "ratio": ratio,
            "cpu_seconds_per_request": {"subject": cpu("kafka"), "baseline": cpu("noop")},
            "open_loop_80pct": [asdict(x) for x in loops],
            "p99_ms_at_80pct": p99,
            "baseline_open_loop_same_rate": [asdict(x) for x in noop_loops],
            "baseline_p99_ms_same_rate": spread([x.p99_ms for x in noop_loops]),
            "open_loop_ladder": ladder,
            "p99_ms_by_fraction_of_peak": {
                f"{variant} {fraction:.0%}": spread(
                    [
                        x["p99_ms"]
                        for x in ladder
                        if x["variant"] == variant and x["fraction"] == fraction
                    ]
                )
                for fraction in fractions
                for variant in ("kafka", "noop")
            },
            "target": ">= 0.6x baseline req/s; p99 <= 50 ms at 80% of peak (open loop)",
            "met": ratio >= 0.6 and p99["median"] <= 50,
            "samples": [{**asdict(p), "cpu_per_request": p.cpu_per_request} for p in peaks],
        },
        {
            "id": "T1b",
            "scenario": "HTTP batch produce: 100 records per POST (application/json array)",
            "baseline": "T1 (single-record POSTs, same run)",
            "load_generator": "wrk 4.1.0 -t1 -c8",
            "unit": "records/s",
            "subject": batch_records,
            "baseline_figure": kafka,
            "ratio": batch_ratio,
            "cpu_seconds_per_request": {
                "subject_per_record": {k: v / 100 for k, v in cpu("kafka-batch100").items()},
                "baseline": cpu("kafka"),
            },
            "target": ">= 10x T1 records/s",
            "met": batch_ratio >= 10,
        },
    ]


def _service_call(url: str, timeout: float | None = None) -> Call:
    query = f"?option:timeout={timeout:g}" if timeout is not None else ""
    target = urlsplit(url + query)._replace(scheme="", netloc="").geturl()

    async def call(client: HttpClient, i: int) -> bool:
        body = json.dumps({"value": {"n": i}}).encode()
        status, text = await client.send(client.prepare("POST", target, body, JSON))
        if status != 200:
            return False
        reply = json.loads(text)
        value = reply.get("record", {}).get("value")
        # Every reply must be the one of this request.
        return isinstance(value, dict) and value.get("n") == i

    return call


async def until_served(url: str, within: float = 120) -> None:
    call = _service_call(url, timeout=5)
    deadline = time.monotonic() + within
    parts = urlsplit(url)
    async with HttpClient(f"{parts.scheme}://{parts.netloc}") as client:
        while time.monotonic() < deadline:
            try:
                if await call(client, 1):
                    return
            except (OSError, asyncio.IncompleteReadError):
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"no reply from {url} within {within:.0f}s")


async def t4(
    bootstrap: str, work: Path, *, seconds: float, repetitions: int, timeout_requests: int
) -> list[dict[str, Any]]:
    peaks: list[Peak] = []
    loops: list[OpenLoop] = []
    async with (
        gateway(bootstrap) as gw,
        app_worker(bootstrap, "identity", work / "state-identity") as identity,
        app_worker(bootstrap, "dropper", work / "state-dropper"),
    ):
        url = gateway_url(gw, "service", "echo")
        naive = f"{gw.url}/bench/naive-service/svc-in/svc-out"
        await until_served(url)
        body = json.dumps({"value": {"n": 1}}).encode()
        warm = min(2.0, seconds / 2)
        await wrk(url, body, JSON, seconds=warm, connections=16)
        await wrk(naive, body, JSON, seconds=warm, connections=16)
        for rep in range(repetitions):
            order = [("per-request", naive), ("shared", url)]
            if rep % 2:
                order.reverse()
            for variant, target in order:
                peaks.append(await measure_peak(variant, rep, gw, target, body, seconds, 16))
            loop = await open_loop(gw, _service_call(url), 100, seconds)
            print(
                f"  T4 100/s #{rep}: p50 {loop.p50_ms:.1f} ms, p99 {loop.p99_ms:.1f} ms, "
                f"failed {loop.failed}",
                flush=True,
            )
            loops.append(loop)
        identity_cpu = identity.cpu()
        t4b = await _t4b(gw, timeout_requests)

    shared = spread([p.wrk.requests_per_second for p in peaks if p.variant == "shared"])
    naive_rate = spread([p.wrk.requests_per_second for p in peaks if p.variant == "per-request"])
    ratio = shared["median"] / naive_rate["median"]
    p50, p99 = spread([x.p50_ms for x in loops]), spread([x.p99_ms for x in loops])
    failed = sum(x.failed for x in loops)
    return [
        {
            "id": "T4",
            "scenario": "service gateway (topics mode) round trip through a real identity "
            "worker (python -m workers ... --executor identity)",
            "baseline": "LangStream-style consumer per request (new AIOKafkaConsumer, assign, "
            "seek_to_end, position, produce, read until the request id, close), served by "
            "the same gateway process and the same worker",
            "load_generator": "wrk -t1 -c16 (throughput); benchmarks.loadgen open loop at "
            "100 req/s "
            "with every reply matched to its request (latency)",
            "unit": "req/s",
            "subject": shared,
            "baseline_figure": naive_rate,
            "ratio": ratio,
            "p50_ms_at_100rps": p50,
            "p99_ms_at_100rps": p99,
            "open_loop_failed_or_mismatched": failed,
            "open_loop": [asdict(x) for x in loops],
            "cpu_seconds_per_request": {
                "subject": spread([p.cpu_per_request for p in peaks if p.variant == "shared"]),
                "baseline": spread(
                    [p.cpu_per_request for p in peaks if p.variant == "per-request"]
                ),
            },
            "identity_worker_cpu_seconds_total": identity_cpu,
            "target": "p50 <= 10 ms, p99 <= 30 ms at 100 req/s; >= 10x per-request-consumer "
            "throughput",
            "met": p50["median"] <= 10 and p99["median"] <= 30 and ratio >= 10 and failed == 0,
            "samples": [{**asdict(p), "cpu_per_request": p.cpu_per_request} for p in peaks],
        },
        t4b,
    ]


async def _t4b(gw: Process, count: int) -> dict[str, Any]:
    """Service calls through the dropping worker with ``option:timeout=2``: every dropped one
    must be a 504 within timeout + 10%, and the pending map must be empty afterwards."""
    timeout = 2.0
    url = gateway_url(gw, "service", "lossy") + f"?option:timeout={timeout:g}"
    await until_served(gateway_url(gw, "service", "lossy"))
    outcomes: list[tuple[int, int, float]] = []
    rate = 50.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:

        async def one(i: int) -> None:
            began = time.monotonic()
            async with session.post(
                url, data=json.dumps({"value": {"n": i}}), headers={"Content-Type": JSON}
            ) as response:
                await response.read()
                outcomes.append((i, response.status, time.monotonic() - began))

        start = time.monotonic()
        tasks = []
        peak_pending = 0
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        peak_pending = (await state(gw))["pending"]
        await asyncio.gather(*tasks)
    after = await state(gw)
    timeouts = [(i, s, t) for i, s, t in outcomes if s == 504]
    expected = [i for i in range(count) if i % 100 == 0]
    wrong = [(i, s) for i, s, _ in outcomes if (s == 504) != (i % 100 == 0)]
    late = [t / timeout for _, _, t in timeouts]
    ok_latency = sorted(t * 1000 for _, s, t in outcomes if s == 200)
    worst = max(late, default=float("nan"))
    met = (
        len(timeouts) == len(expected)
        and not wrong
        and all(1.0 <= x <= 1.1 for x in late)
        and after["pending"] == 0
    )
    print(
        f"  T4b: {len(timeouts)} timeouts of {count} (expected {len(expected)}), worst "
        f"{worst:.3f}x timeout, pending after {after['pending']}",
        flush=True,
    )
    return {
        "id": "T4b",
        "scenario": f"service timeouts: worker drops 1% (n % 100 == 0), option:timeout={timeout:g}"
        f", {count} requests at {rate:g}/s",
        "baseline": "T4 (the other 99% of requests, same gateway process)",
        "requests": count,
        "timeouts": len(timeouts),
        "expected_timeouts": len(expected),
        "unexpected_status": wrong[:20],
        "timeout_elapsed_over_timeout": spread(late) if late else None,
        "ok_p50_ms": percentile(ok_latency, 0.5),
        "ok_p99_ms": percentile(ok_latency, 0.99),
        "pending_during_run": peak_pending,
        "pending_after": after["pending"],
        "pending_check": "GET /bench/state on the gateway process (runtime.pending_count)",
        "target": "timeouts within timeout + 10%; pending map returns to 0",
        "met": met,
    }


C1_CLIENTS = (1, 10, 100)
"""C1's concurrency levels (closed-loop clients, one keep-alive connection each)."""


async def c1(bootstrap: str, *, seconds: float, repetitions: int) -> dict[str, Any]:
    """Gateway CPU-seconds per 1,000 HTTP produce requests at 1, 10 and 100 concurrent
    clients: the cost of a request must not grow with the load (flat within 2x)."""
    peaks: list[Peak] = []
    async with gateway(bootstrap) as gw:
        url = gateway_url(gw, "produce", "ingest")
        await wrk(url, ONE, JSON, seconds=min(2.0, seconds / 2), connections=max(C1_CLIENTS))
        for rep in range(repetitions):
            # Rotated, so no level always runs first (or right after the heaviest).
            shift = rep % len(C1_CLIENTS)
            for clients in C1_CLIENTS[shift:] + C1_CLIENTS[:shift]:
                peaks.append(await measure_peak(f"c{clients}", rep, gw, url, ONE, seconds, clients))

    def of(clients: int) -> list[Peak]:
        return [p for p in peaks if p.variant == f"c{clients}"]

    per_1k = {f"{n} clients": spread([p.cpu_per_request * 1000 for p in of(n)]) for n in C1_CLIENTS}
    medians = [figure["median"] for figure in per_1k.values()]
    ratio = max(medians) / min(medians)
    return {
        "id": "C1",
        "scenario": "cost growth: gateway CPU-seconds per 1,000 HTTP produce requests at "
        + ", ".join(str(n) for n in C1_CLIENTS)
        + " concurrent clients (closed loop)",
        "baseline": "itself: the highest cost against the lowest",
        "load_generator": f"wrk -t1 -c<clients>, {seconds:g} s per level, levels rotated",
        "cpu_seconds_per_1k": per_1k,
        "requests_per_second": {
            f"{n} clients": spread([p.wrk.requests_per_second for p in of(n)]) for n in C1_CLIENTS
        },
        "p99_ms": {f"{n} clients": spread([p.wrk.p99_ms for p in of(n)]) for n in C1_CLIENTS},
        "ratio": ratio,
        "target": "flat within 2x (highest / lowest CPU-seconds per 1k requests <= 2)",
        "met": ratio <= 2,
        "samples": [{**asdict(p), "cpu_per_request": p.cpu_per_request} for p in peaks],
    }


async def servers(bootstrap: str, *, seconds: float, repetitions: int) -> dict[str, Any]:
    """The same app under Hypercorn and under Uvicorn, alternating: HTTP produce (Kafka and
    no-op producer) peaks and WebSocket produce / echo rates. Informational: which server costs
    less per request, for the README's advice."""
    from benchmarks.ws_scenarios import drive

    rows: list[dict[str, Any]] = []
    for rep in range(repetitions):
        order = ["hypercorn", "uvicorn"] if rep % 2 == 0 else ["uvicorn", "hypercorn"]
        for server in order:
            async with (
                gateway(bootstrap, server=server) as kafka_gw,
                gateway(bootstrap, noop=True, server=server) as noop_gw,
            ):
                kafka_url = gateway_url(kafka_gw, "produce", "ingest")
                noop_url = gateway_url(noop_gw, "produce", "ingest")
                warm = min(2.0, seconds / 2)
                await wrk(kafka_url, ONE, JSON, seconds=warm)
                await wrk(noop_url, ONE, JSON, seconds=warm)
                noop = await measure_peak(
                    f"{server}-noop", rep, noop_gw, noop_url, ONE, seconds, 64
                )
                kafka = await measure_peak(
                    f"{server}-kafka", rep, kafka_gw, kafka_url, ONE, seconds, 64
                )
                ws = {}
                for variant, url in (
                    ("echo", kafka_gw.url.replace("http", "ws", 1) + "/bench/echo"),
                    ("produce", gateway_url(kafka_gw, "produce", "ingest", ws=True)),
                ):
                    await drive(url, 50, warm, check=False)
                    before, began = kafka_gw.cpu(), time.monotonic()
                    count, _ = await drive(url, 50, seconds, check=False)
                    elapsed = time.monotonic() - began
                    ws[variant] = {
                        "messages_per_second": count / elapsed,
                        "cpu_per_message": (kafka_gw.cpu() - before) / max(1, count),
                    }
                    print(
                        f"  {server:9} WS {variant:8} #{rep}: {count / elapsed:8.0f} msgs/s",
                        flush=True,
                    )
            rows.append(
                {
                    "server": server,
                    "repetition": rep,
                    "http_noop_rps": noop.wrk.requests_per_second,
                    "http_noop_cpu_per_request": noop.cpu_per_request,
                    "http_kafka_rps": kafka.wrk.requests_per_second,
                    "http_kafka_cpu_per_request": kafka.cpu_per_request,
                    "http_kafka_p99_ms": kafka.wrk.p99_ms,
                    "ws_echo_mps": ws["echo"]["messages_per_second"],
                    "ws_echo_cpu_per_message": ws["echo"]["cpu_per_message"],
                    "ws_produce_mps": ws["produce"]["messages_per_second"],
                    "ws_produce_cpu_per_message": ws["produce"]["cpu_per_message"],
                }
            )

    def of(server: str, name: str) -> dict[str, float]:
        return spread([r[name] for r in rows if r["server"] == server])

    figures = {
        server: {name: of(server, name) for name in rows[0] if name not in ("server", "repetition")}
        for server in ("hypercorn", "uvicorn")
    }
    ratio = (
        figures["uvicorn"]["http_kafka_rps"]["median"]
        / figures["hypercorn"]["http_kafka_rps"]["median"]
    )
    return {
        "id": "U1",
        "scenario": "the same gateway app under Uvicorn (extra row): HTTP produce peaks (Kafka "
        "and no-op producer, wrk -c64) and WebSocket produce / echo (50 sockets)",
        "baseline": "Hypercorn (what sluice run and python -m gateway serve with), same run, "
        "alternating",
        "load_generator": "wrk -t1 -c64; python websockets client",
        "servers": figures,
        "ratio": ratio,
        "target": "none: informs which server to use when",
        "met": None,
        "samples": rows,
    }
