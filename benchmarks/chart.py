"""The PNG chart of a benchmark report: ratios against their targets, latency percentiles, and
C1's cost per concurrency level. matplotlib (the ``bench`` / ``dev`` extra) draws it off-screen.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["RATIO_TARGETS", "draw"]

RATIO_TARGETS: dict[str, tuple[float, str]] = {
    "T1": (0.6, ">="),
    "T1b": (10.0, ">="),
    "W1": (0.6, ">="),
    "T3": (0.4, ">="),
    "B1": (0.7, ">="),
    "B2": (0.8, ">="),
    "B3": (1.2, "<="),
    "B4": (0.7, ">="),
    "T4": (10.0, ">="),
    "C1": (2.0, "<="),
}
"""Each ratio's target: (threshold, direction)."""


def _ratios(results: list[dict[str, Any]]) -> list[tuple[str, float, float, str]]:
    rows = []
    for r in results:
        target = RATIO_TARGETS.get(r["id"])
        if target is None or not isinstance(r.get("ratio"), int | float):
            continue
        rows.append((r["id"], float(r["ratio"]), *target))
    return rows


def _latencies(results: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """(label, {percentile: ms}) for every open-loop latency a report holds."""
    rows: list[tuple[str, dict[str, float]]] = []
    for r in results:
        rid = r["id"]
        if rid == "T1":
            for variant in ("kafka", "noop"):
                fractions = sorted(
                    {x["fraction"] for x in r.get("open_loop_ladder", [])}, reverse=True
                )
                for fraction in fractions:
                    runs = [
                        x
                        for x in r["open_loop_ladder"]
                        if x["variant"] == variant and x["fraction"] == fraction
                    ]
                    rows.append((f"T1 {variant} {fraction:.0%}", _median_of(runs)))
        elif rid == "T4":
            rows.append(("T4 100/s", _median_of(r.get("open_loop", []))))
        elif rid == "T4b":
            rows.append(("T4b ok", {"p50": r["ok_p50_ms"], "p99": r["ok_p99_ms"]}))
        elif rid == "A1":
            rows.append(
                (
                    "A1 valid, flood",
                    {
                        "p50": r["valid_p50_ms_flood"]["median"],
                        "p99": r["valid_p99_ms_flood"]["median"],
                    },
                )
            )
            rows.append(("A1 valid alone", {"p99": r["valid_p99_ms_baseline"]["median"]}))
        elif rid == "W2":
            for run in r["runs"]:
                best = run.get("highest_sustained")
                if best:
                    label = f"W2 {run['connected']} @{best['rate_events_per_second']:g}/s"
                    rows.append(
                        (label, {"p50": best["p50_s_approx"] * 1000, "p99": best["p99_s"] * 1000})
                    )
        elif rid == "B3":
            for variant, label in (("pipeline", "B3 first chunk"), ("direct", "B3 server TTFT")):
                figure = r["first_chunk_ms"][variant]
                rows.append((label, {"p50": figure["median"], "p90": figure["p90"]}))
        elif rid == "B5":
            for variant, label in (("pipeline", "B5 worker 50/s"), ("direct", "B5 direct 50/s")):
                p50, p99 = r["p50_ms"][variant], r["p99_ms"][variant]
                rows.append((label, {"p50": p50["median"], "p99": p99["median"]}))
        elif rid == "C1":
            for name, figure in r["p99_ms"].items():
                rows.append((f"C1 {name} (wrk)", {"p99": figure["median"]}))
    return [(label, values) for label, values in rows if values]


def _median_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, name in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
        samples = sorted(x[key] for x in runs if not math.isnan(x[key]))
        if samples:
            values[name] = samples[len(samples) // 2]
    return values


def draw(report: dict[str, Any], path: Path) -> None:
    """Write the chart of ``report`` (the JSON written beside it) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    ratios = _ratios(results)
    latencies = _latencies(results)
    c1 = next((r for r in results if r["id"] == "C1"), None)
    panels = [p for p in ("ratios", "latency", "c1") if p != "c1" or c1 is not None]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(6.5 * len(panels), 5.5), squeeze=False, layout="constrained"
    )
    title = f"Sluice benchmarks {report['date']}{' (quick)' if report['quick'] else ''}"
    figure.suptitle(title)

    ax = axes[0][0]
    if ratios:
        # Each ratio as a fraction of its target: 1 is the target, right of it is met.
        labels = [
            f"{rid}\n{value:.3g} ({op} {threshold:g})" for rid, value, threshold, op in ratios
        ]
        scores = [
            value / threshold if op == ">=" else threshold / max(value, 1e-9)
            for _, value, threshold, op in ratios
        ]
        colours = ["tab:green" if s >= 1 else "tab:red" for s in scores]
        ax.barh(labels, scores, color=colours)
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(1.5, *scores) * 1.05)
        ax.invert_yaxis()
        ax.set_xlabel("ratio / target (>= 1: met)")
    ax.set_title("Ratios against same-run baselines")

    ax = axes[0][1]
    if latencies:
        percentiles = ("p50", "p90", "p99")
        width = 0.27
        for index, name in enumerate(percentiles):
            xs = [i + (index - 1) * width for i in range(len(latencies))]
            ys = [values.get(name, math.nan) for _, values in latencies]
            ax.bar(xs, ys, width, label=name)
        ax.set_xticks(range(len(latencies)), [label for label, _ in latencies], rotation=60)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ms (log)")
        ax.axhline(50, color="grey", linestyle=":", linewidth=1)
        ax.legend()
    ax.set_title("Latency percentiles (open loop unless noted)")

    if c1 is not None:
        ax = axes[0][2]
        names = list(c1["cpu_seconds_per_1k"])
        medians = [c1["cpu_seconds_per_1k"][n]["median"] for n in names]
        lows = [m - c1["cpu_seconds_per_1k"][n]["min"] for n, m in zip(names, medians, strict=True)]
        highs = [
            c1["cpu_seconds_per_1k"][n]["max"] - m for n, m in zip(names, medians, strict=True)
        ]
        ax.bar(names, medians, yerr=[lows, highs], color="tab:blue", capsize=4)
        ax.axhline(2 * min(medians), color="grey", linestyle=":", linewidth=1, label="2x lowest")
        ax.set_ylabel("gateway CPU-seconds per 1,000 requests")
        ax.legend()
        ax.set_title(f"C1 cost growth (ratio {c1['ratio']:.2f})")

    figure.savefig(path, dpi=100)
    plt.close(figure)
