"""``python -m benchmarks --quick``: the command runs and writes its three result files.

A smoke test: it asserts that the suite runs end to end against the real broker and that what
it writes parses, never what the figures are (timings on a shared machine are not pass/fail).
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("t1", "t1b", "w1", "c1", "b1")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_quick_run_writes_json_markdown_and_chart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--seconds",
        "1",
        "--scenario",
        ",".join(SCENARIOS),
        "--results",
        str(results),
        "--bootstrap-servers",
        kafka_bootstrap,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]

    files = sorted(p.name for p in results.iterdir())
    stem = files[0].rsplit(".", 1)[0]
    assert stem.endswith("-quick")
    assert files == [f"{stem}.json", f"{stem}.md", f"{stem}.png"]

    report = json.loads((results / f"{stem}.json").read_text())
    assert report["quick"] is True
    assert report["scenarios"] == list(SCENARIOS)
    assert [r["id"].lower() for r in report["results"]] == list(SCENARIOS)
    for result in report["results"]:
        assert isinstance(result["met"], bool)
        assert result["target"]
    assert report["environment"]["versions"]["sluicegate"]
    assert report["chart"] == f"{stem}.png"

    table = (results / f"{stem}.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| id | figure | baseline | ratio |")
    assert [row.split("|")[1].strip() for row in rows[1:]] == [r["id"] for r in report["results"]]
    assert f"]({stem}.png)" in table

    width, height = _png_size((results / f"{stem}.png").read_bytes())
    assert width > 600
    assert height > 300
