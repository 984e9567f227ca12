"""``python -m benchmarks [--scenario S,...] [--quick] [--results DIR]``, S of :data:`SCENARIOS`.

Starts its own broker (a local Kafka on a free port, in a temporary folder, stopped afterwards;
``--bootstrap-servers`` uses a running one instead), runs the scenarios of docs/benchmarks.md,
and writes ``<date>.json``, ``<date>.md`` and ``<date>.png`` (the chart) under
``benchmarks/results/`` (or ``--results DIR``); a run of some scenarios only is
``<date>-<scenarios>.*``, a quick one ``*-quick.*``. Every figure is a ratio against a baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import b1, b2, b3, b4, b5, t3
from benchmarks.chart import draw
from benchmarks.harness import CLIENT_CPU, GATEWAY_CPU, SERVER_OPTIONS, have_wrk
from benchmarks.report import markdown
from sluice.eventloop import loop_name, run
from sluice.kafka.local import LocalKafka, LocalKafkaSettings

RESULTS = Path(__file__).parent / "results"
SCENARIOS = (
    "t1",
    "t1b",
    "w1",
    "t4",
    "t4b",
    "w2",
    "c1",
    "t3",
    "b1",
    "b2",
    "b3",
    "b4",
    "b5",
    "a1",
    "u1",
)
WORKER_ONLY = frozenset({"t3", "b1", "b2", "b3", "b4", "b5", "a1"})
"""Scenarios without the benchmark gateway (no pinning either)."""


def environment(pinned: bool) -> dict[str, Any]:
    cpu = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in lscpu.splitlines()
                if line.startswith("Model name")
            ),
            cpu,
        )
    except OSError:
        pass
    names = (
        "sluicegate",
        "aiokafka",
        "quart",
        "hypercorn",
        "uvicorn",
        "uvloop",
        "orjson",
        "websockets",
        "aiohttp",
        "httpx",
        "onnxruntime",
        "openai",
    )
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        versions["wrk"] = (wrk.stdout or wrk.stderr).split("[")[0].strip()
    except OSError:
        versions["wrk"] = "not installed"
    pinning = (
        f"gateway process taskset -c {GATEWAY_CPU}; benchmark driver, load generators "
        f"(wrk, Python clients) and workers on CPU {CLIENT_CPU}; broker unpinned"
        if pinned
        else "none"
    )
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "pinning": pinning,
        "broker": "sluice.kafka.local.LocalKafka (single broker, RF 1, loopback)",
        "versions": versions,
        "event_loop": f"gateway: {'asyncio' if SERVER_OPTIONS else loop_name()}; "
        f"driver and load generators: {loop_name()}; workers: asyncio (python -m workers)",
        "load_generator": "wrk" if have_wrk() else "aiohttp closed loop (wrk not installed)",
    }


async def main_async(args: argparse.Namespace, chosen: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        if args.bootstrap_servers:
            return await _scenarios(args, chosen, args.bootstrap_servers, Path(tmp))
        settings = LocalKafkaSettings(port=0, data_dir=Path(tmp) / "kafka")
        async with LocalKafka(settings) as kafka:
            return await _scenarios(args, chosen, kafka.bootstrap_servers, Path(tmp))


async def _scenarios(
    args: argparse.Namespace, chosen: list[str], bootstrap: str, work: Path
) -> list[dict[str, Any]]:
    quick = args.quick
    repetitions = 1 if quick else args.repetitions
    results: list[dict[str, Any]] = []
    gateway_scenarios = [s for s in chosen if s not in WORKER_ONLY]
    if gateway_scenarios:
        from benchmarks.harness import APP_DIR
        from sluice.application import plan_application
        from sluice.application.loader import load_application
        from sluice.kafka import KafkaSettings
        from sluice.kafka.admin import ensure_topics

        plan = plan_application(load_application(APP_DIR))
        await ensure_topics(KafkaSettings(bootstrap), plan.topics)
        # The broker stays unpinned; this process, and so the workers and Python load
        # generators it starts, run on the CPU the gateway does not use.
        affinity = os.sched_getaffinity(0)
        if args.pin:
            os.sched_setaffinity(0, {int(CLIENT_CPU)})
        try:
            results.extend(await _gateway(args, gateway_scenarios, bootstrap, work))
        finally:
            os.sched_setaffinity(0, affinity)
    if "a1" in chosen:
        from benchmarks.auth_flood import a1

        print("A1: authentication flood", flush=True)
        results.append(
            await a1(
                bootstrap,
                work / "a1",
                bad=1000 if quick else 10_000,
                valid=100 if quick else 1000,
                repetitions=repetitions,
            )
        )
    if "t3" in chosen:
        print("T3: worker", flush=True)
        records = 2000 if quick else args.records
        results.append(await t3.run(bootstrap, records=records, repetitions=repetitions))
    if "b1" in chosen:
        print("B1: fused built-in agents", flush=True)
        records = 2000 if quick else args.records
        results.append(await b1.run(bootstrap, records=records, repetitions=repetitions))
    if "b2" in chosen:
        print("B2: compute-ai-embeddings on the local model", flush=True)
        records = 100 if quick else args.b2_records
        results.append(await b2.run(bootstrap, records=records, repetitions=repetitions))
    if "b3" in chosen:
        print("B3: chat time to first chunk on the local model", flush=True)
        questions = 3 if quick else args.b3_questions
        results.append(await b3.run(bootstrap, questions=questions, repetitions=repetitions))
    if "b4" in chosen:
        print("B4: vector-db-sink on the embedded PostgreSQL", flush=True)
        records = 500 if quick else args.b4_records
        results.append(await b4.run(bootstrap, records=records, repetitions=repetitions))
    if "b5" in chosen:
        print("B5: query-vector-db latency at 50 queries/s", flush=True)
        seconds = 2 if quick else args.b5_seconds
        results.append(await b5.run(bootstrap, seconds=seconds, repetitions=repetitions))
    return results


async def _gateway(
    args: argparse.Namespace, chosen: list[str], bootstrap: str, work: Path
) -> list[dict[str, Any]]:
    from benchmarks import http_scenarios, ws_scenarios

    quick = args.quick
    repetitions = 1 if quick else args.repetitions
    seconds = args.seconds if args.seconds is not None else (2 if quick else 8)
    results: list[dict[str, Any]] = []
    if "t1" in chosen or "t1b" in chosen:
        print("T1/T1b: HTTP produce", flush=True)
        pair = await http_scenarios.t1(
            bootstrap,
            seconds=seconds,
            repetitions=repetitions,
            fractions=(0.8,) if quick else http_scenarios.LATENCY_FRACTIONS,
        )
        results.extend(r for r in pair if r["id"].lower() in chosen)
    if "w1" in chosen:
        print("W1: WebSocket produce", flush=True)
        results.append(await ws_scenarios.w1(bootstrap, seconds=seconds, repetitions=repetitions))
    if "t4" in chosen or "t4b" in chosen:
        print("T4/T4b: service gateway", flush=True)
        pair = await http_scenarios.t4(
            bootstrap,
            work,
            seconds=seconds,
            repetitions=repetitions,
            timeout_requests=200 if quick else 1000,
        )
        results.extend(r for r in pair if r["id"].lower() in chosen)
    if "w2" in chosen:
        print("W2: WebSocket fan-out", flush=True)
        sizes = [100, 1000] if quick else [int(x) for x in args.w2_sizes.split(",")]
        # Events per second on the topic; each is delivered to every connection.
        rates = [1.0, 5.0] if quick else [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        results.append(await ws_scenarios.w2(bootstrap, sizes, rates, 2 if quick else 10))
    if "u1" in chosen:
        print("U1: the same app under Uvicorn", flush=True)
        results.append(
            await http_scenarios.servers(bootstrap, seconds=seconds, repetitions=repetitions)
        )
    if "c1" in chosen:
        print("C1: cost growth with concurrency", flush=True)
        results.append(await http_scenarios.c1(bootstrap, seconds=seconds, repetitions=repetitions))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--scenario",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--records", type=int, default=50_000, help="T3 and B1 records per run")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, help="length of each measurement (default 8, --quick 2)"
    )
    parser.add_argument("--w2-sizes", default="1000,10000", help="W2 connection counts")
    parser.add_argument("--b2-records", type=int, default=2000, help="B2 records per run")
    parser.add_argument(
        "--b3-questions", type=int, default=15, help="B3 questions per repetition (odd)"
    )
    parser.add_argument("--b4-records", type=int, default=10_000, help="B4 records per run")
    parser.add_argument("--b5-seconds", type=float, default=20, help="B5 seconds of load per run")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset pinning")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and once")
    parser.add_argument("--name", help="result file stem after the date (default: the scenarios)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument(
        "--bootstrap-servers", help="use this running broker instead of starting one"
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio"),
        default="auto",
        help="event loop of the gateways under test (auto: uvloop when installed)",
    )
    args = parser.parse_args()
    if args.loop == "asyncio":
        SERVER_OPTIONS.append("--loop=asyncio")
    chosen = [s.strip().lower() for s in args.scenario.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    load_before = os.getloadavg()
    results = run(main_async(args, chosen))
    environment_ = environment(args.pin and bool(set(chosen) - WORKER_ONLY))
    environment_["load_before"] = load_before
    environment_["load_after"] = os.getloadavg()
    date = datetime.date.today().isoformat()
    name = args.name or ("" if set(chosen) == set(SCENARIOS) else "-".join(chosen))
    stem = "-".join(part for part in (date, name, "quick" if args.quick else "") if part)
    report: dict[str, Any] = {
        "date": date,
        "quick": args.quick,
        "scenarios": chosen,
        "environment": environment_,
        "chart": f"{stem}.png",
        "results": results,
    }
    folder: Path = args.results
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    draw(report, folder / f"{stem}.png")
    (folder / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written {folder / stem}.json, .md and .png")


if __name__ == "__main__":
    main()
