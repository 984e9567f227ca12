"""B2 (embeddings through a worker against the model called directly) and B3 (chat time to
first chunk through a worker against the model server's own) run and write their results.

Smoke tests as ``test_quick_run``: the scenarios run end to end on the real broker, the real
local embeddings model and the real local chat model, and what they write holds every figure
the report needs; never what the figures are.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import b2, b3
from tests.benchmarks.quick import quick_run


@pytest.mark.kafka
async def test_b2_quick_run_measures_the_pipeline_and_both_direct_references(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stem, report = await quick_run(("b2",), kafka_bootstrap, tmp_path / "results")
    [result] = report["results"]
    assert result["batch_size"] == b2.BATCH_SIZE
    assert result["records"] % b2.BATCH_SIZE == 0
    assert [s["variant"] for s in result["samples"]] == list(b2.VARIANTS)
    for variant in b2.VARIANTS:
        assert result["records_per_second"][variant]["median"] > 0
        assert result["cpu_seconds_per_1k_records"][variant]["median"] > 0
    rates = result["records_per_second"]
    assert result["ratio"] == pytest.approx(rates["pipeline"]["median"] / rates["direct"]["median"])
    cpus = result["cpu_seconds_per_1k_records"]
    assert result["cpu_ratio"] == pytest.approx(
        cpus["direct"]["median"] / cpus["pipeline"]["median"]
    )
    assert "| B2 |" in (tmp_path / "results" / f"{stem}.md").read_text()


async def test_b3_quick_run_times_both_paths_on_the_same_questions(
    kafka_bootstrap: str, local_llm_assets: Path, tmp_path: Path
) -> None:
    stem, report = await quick_run(
        ("b3",),
        kafka_bootstrap,
        tmp_path / "results",
        env={"SLUICE_LLAMA_ASSETS": str(local_llm_assets)},
    )
    [result] = report["results"]
    samples = result["samples"]
    assert len(samples) == 2 * result["questions"]
    asked = Counter((s["variant"], s["question"]) for s in samples)
    assert set(asked.values()) == {1}
    assert {v for v, _ in asked} == {"direct", "pipeline"}
    for sample in samples:
        assert 0 < sample["first_chunk_ms"] <= sample["answer_ms"]
    first = result["first_chunk_ms"]
    assert result["ratio"] == pytest.approx(first["pipeline"]["median"] / first["direct"]["median"])
    assert first["pipeline"]["p90"] >= first["pipeline"]["median"]
    assert "| B3 |" in (tmp_path / "results" / f"{stem}.md").read_text()


def test_b3_schedule_alternates_and_never_repeats_the_prompt_just_asked() -> None:
    for repetition in (0, 1):
        order = b3.schedule(5, repetition)
        assert [v for v, _ in order] == [
            ("direct", "pipeline")[(j + repetition) % 2] for j in range(10)
        ]
        assert Counter(order) == Counter(
            {(v, k): 1 for v in ("direct", "pipeline") for k in range(5)}
        )
        assert all(a[1] != b[1] for a, b in itertools.pairwise(order))


def test_b3_schedule_needs_an_odd_number_of_questions() -> None:
    with pytest.raises(ValueError, match="odd number of questions, at least 3; got 4"):
        b3.schedule(4, 0)


def test_b2_texts_are_the_same_every_time_and_vary_in_length() -> None:
    texts = [b2.text_of(i) for i in range(200)]
    assert texts == [b2.text_of(i) for i in range(200)]
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= 14
    assert max(lengths) <= 42
    assert len(set(lengths)) > 10
