"""B4 (``vector-db-sink`` through a worker against a bare batched insert) and B5
(``query-vector-db`` latency at 50 queries/s against the query run directly) run and write
their results.

Smoke tests as ``test_quick_run``: the scenarios run end to end on the real broker and the
embedded PostgreSQL with pgvector, and what they write holds every figure the report needs;
never what the figures are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import b4, b5
from tests.benchmarks.quick import quick_run

pytestmark = pytest.mark.kafka


async def test_b4_quick_run_measures_every_variant_on_every_row(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stem, report = await quick_run(("b4",), kafka_bootstrap, tmp_path / "results")
    [result] = report["results"]
    assert result["records"] % b4.BATCH_SIZE == 0
    assert [s["variant"] for s in result["samples"]] == list(b4.VARIANTS)
    assert all(s["records"] == result["records"] for s in result["samples"])
    rates = result["records_per_second"]
    for variant in b4.VARIANTS:
        assert rates[variant]["median"] > 0
        assert result["cpu_seconds_per_1k_records"][variant]["median"] > 0
    assert result["ratio"] == pytest.approx(rates["pipeline"]["median"] / rates["direct"]["median"])
    assert result["ratio_with_fn"] == pytest.approx(
        rates["pipeline-fn"]["median"] / rates["direct"]["median"]
    )
    assert "| B4 |" in (tmp_path / "results" / f"{stem}.md").read_text()


async def test_b5_quick_run_times_both_paths_at_the_same_rate(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stem, report = await quick_run(("b5",), kafka_bootstrap, tmp_path / "results")
    [result] = report["results"]
    assert result["rate_per_second"] == b5.RATE
    samples = result["samples"]
    assert [s["variant"] for s in samples] == list(b5.VARIANTS)
    for sample in samples:
        assert sample["queries"] == result["queries"]
        assert 0 < sample["p50_ms"] <= sample["p99_ms"] <= sample["max_ms"]
    p99 = result["p99_ms"]
    assert result["ratio"] == pytest.approx(p99["pipeline"]["median"] / p99["direct"]["median"])
    assert all(s["answered"] == s["queries"] for s in samples)
    assert "| B5 |" in (tmp_path / "results" / f"{stem}.md").read_text()
