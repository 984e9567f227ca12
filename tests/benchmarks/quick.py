"""``python -m benchmarks --quick`` as the smoke tests run it: against the test broker, into a
folder of the test, with its output kept for the failure message."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


async def quick_run(
    scenarios: tuple[str, ...],
    bootstrap: str,
    results: Path,
    *,
    env: dict[str, str] | None = None,
    within: float = 240,
) -> tuple[str, dict[str, Any]]:
    """Run the scenarios once, small; the stem of the files written and the JSON report."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--seconds",
        "1",
        "--scenario",
        ",".join(scenarios),
        "--results",
        str(results),
        "--bootstrap-servers",
        bootstrap,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]
    return _written(results, scenarios)


def _written(results: Path, scenarios: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    files = sorted(p.name for p in results.iterdir())
    stem = files[0].rsplit(".", 1)[0]
    assert stem.endswith("-quick")
    assert files == [f"{stem}.json", f"{stem}.md", f"{stem}.png"]
    report: dict[str, Any] = json.loads((results / f"{stem}.json").read_text())
    assert report["quick"] is True
    assert report["scenarios"] == list(scenarios)
    assert [r["id"].lower() for r in report["results"]] == list(scenarios)
    for result in report["results"]:
        assert isinstance(result["met"], bool)
        assert result["target"]
    table = (results / f"{stem}.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == [r["id"] for r in report["results"]]
    return stem, report
