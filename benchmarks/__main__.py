"""``python -m benchmarks [t3] [--quick]``: starts its own broker, writes benchmarks/results/."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import t3
from sluice.kafka.local import LocalKafka, LocalKafkaSettings

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
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
    versions = {name: metadata.version(name) for name in ("sluicegate", "aiokafka")}
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "pinning": "none",
        "versions": versions,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    records = 2000 if args.quick else args.records
    repetitions = 1 if args.quick else args.repetitions
    with tempfile.TemporaryDirectory(prefix="sluice-bench-kafka-") as data:
        settings = LocalKafkaSettings(port=0, data_dir=Path(data))
        async with LocalKafka(settings) as kafka:
            results = [
                await t3.run(kafka.bootstrap_servers, records=records, repetitions=repetitions)
            ]
    return {
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "environment": environment(),
        "results": results,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Benchmarks {report['date']}{' (quick)' if report['quick'] else ''}",
        "",
        f"CPU: {report['environment']['cpu']}; Python {report['environment']['python']}",
        "",
        "| id | figure | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        worker = r["worker_records_per_second"]
        base = r["baseline_records_per_second"]
        lines.append(
            f"| {r['id']} | {worker['median']:.0f} rec/s ({worker['min']:.0f}-{worker['max']:.0f})"
            f" | {base['median']:.0f} rec/s ({base['min']:.0f}-{base['max']:.0f}) "
            f"| {r['ratio']:.2f} | {r['target']} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("scenario", nargs="?", default="t3", choices=("t3",))
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and once")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    stem = f"{report['date']}-{args.scenario}{'-quick' if args.quick else ''}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
