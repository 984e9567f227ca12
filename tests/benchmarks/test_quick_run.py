"""``python -m benchmarks --quick``: the command runs and writes its three result files.

A smoke test: it asserts that the suite runs end to end against the real broker and that what
it writes parses, never what the figures are (timings on a shared machine are not pass/fail).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.benchmarks.quick import quick_run

pytestmark = pytest.mark.kafka

SCENARIOS = ("t1", "t1b", "w1", "c1", "t3", "b1")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_quick_run_writes_json_markdown_and_chart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    stem, report = await quick_run(SCENARIOS, kafka_bootstrap, results)

    assert report["environment"]["versions"]["sluicegate"]
    assert report["chart"] == f"{stem}.png"
    table = (results / f"{stem}.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| id | figure | baseline | ratio |")
    assert f"]({stem}.png)" in table

    width, height = _png_size((results / f"{stem}.png").read_bytes())
    assert width > 600
    assert height > 300
