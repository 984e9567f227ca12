"""The Markdown table of a benchmark report (the JSON file has every sample)."""

from __future__ import annotations

from typing import Any


def _fig(figure: dict[str, float], unit: str) -> str:
    return f"{figure['median']:.0f} {unit} ({figure['min']:.0f}-{figure['max']:.0f})"


def _cpu(result: dict[str, Any]) -> str:
    cpu = result.get("cpu_seconds_per_request")
    if not cpu:
        return ""
    parts = []
    for name, figure in cpu.items():
        parts.append(f"{name} {figure['median'] * 1e6:.0f} us")
    return "; ".join(parts)


def _row(r: dict[str, Any]) -> list[str]:
    rid = r["id"]
    if rid == "T3":
        worker = r["worker_records_per_second"]
        base = r["baseline_records_per_second"]
        return [_fig(worker, "rec/s"), _fig(base, "rec/s"), f"{r['ratio']:.3g}", "", ""]
    if rid == "B1":
        rates, cpu = r["records_per_second"], r["cpu_seconds_per_1k_records"]
        per_rep = r["ratio_per_repetition"]
        python = rates.get("python-identity")
        return [
            _fig(rates["fused"], "rec/s"),
            "identity agent "
            + _fig(rates["identity"], "rec/s")
            + (f"; python identity {_fig(python, 'rec/s')}" if python else ""),
            f"{r['ratio']:.3g} (per repetition {per_rep['min']:.3g}-{per_rep['max']:.3g})",
            "",
            "worker CPU-s per 1k records: "
            + ", ".join(f"{name} {figure['median']:.3f}" for name, figure in cpu.items()),
        ]
    if rid == "B2":
        rates, cpu = r["records_per_second"], r["cpu_seconds_per_1k_records"]
        per_rep = r["ratio_per_repetition"]
        return [
            _fig(rates["pipeline"], "rec/s"),
            f"model direct, {r['batch_size']} per call: "
            + _fig(rates["direct"], "rec/s")
            + f"; one per call {_fig(rates['direct-single'], 'rec/s')}",
            f"{r['ratio']:.3g} (per repetition {per_rep['min']:.3g}-{per_rep['max']:.3g}); "
            f"{r['ratio_to_direct_single']:.3g} of one per call",
            f"CPU per record, direct over worker: {r['cpu_ratio']:.3g}" if "cpu_ratio" in r else "",
            "CPU-s per 1k records (worker; direct: this process): "
            + ", ".join(f"{name} {figure['median']:.1f}" for name, figure in cpu.items()),
        ]
    if rid == "B3":
        first, whole = r["first_chunk_ms"], r["answer_ms"]
        per_rep = r["ratio_per_repetition"]

        def ms(figure: dict[str, float]) -> str:
            return f"median {figure['median']:.0f} ms, p90 {figure['p90']:.0f} ms"

        return [
            "first chunk through the worker: " + ms(first["pipeline"]),
            "server's first token: " + ms(first["direct"]),
            f"{r['ratio']:.3g} (per repetition {per_rep['min']:.3g}-{per_rep['max']:.3g}; "
            f"pooled medians {r['ratio_of_pooled_medians']:.3g}, p90 {r['ratio_p90']:.3g}; "
            f"+{r['added_ms_median']:.0f} ms)",
            f"whole answer ({r['max_tokens']} tokens max): worker {ms(whole['pipeline'])}; "
            f"direct {ms(whole['direct'])}",
            "",
        ]
    if rid == "B4":
        rates, cpu = r["records_per_second"], r["cpu_seconds_per_1k_records"]
        per_rep = r["ratio_per_repetition"]
        return [
            _fig(rates["pipeline"], "rows/s")
            + f"; with fn:toListOfFloat {_fig(rates['pipeline-fn'], 'rows/s')}",
            f"bare executemany, {r['batch_size']} rows per transaction: "
            + _fig(rates["direct"], "rows/s"),
            f"{r['ratio']:.3g} (per repetition {per_rep['min']:.3g}-{per_rep['max']:.3g}); "
            f"with fn:toListOfFloat {r['ratio_with_fn']:.3g}",
            "",
            "CPU-s per 1k rows (worker; direct: this process): "
            + ", ".join(f"{name} {figure['median']:.2f}" for name, figure in cpu.items()),
        ]
    if rid == "B5":
        p50, p99 = r["p50_ms"], r["p99_ms"]

        def latencies(variant: str) -> str:
            return (
                f"p50 {p50[variant]['median']:.1f} ms, p99 {p99[variant]['median']:.1f} ms "
                f"({p99[variant]['min']:.1f}-{p99[variant]['max']:.1f})"
            )

        return [
            f"through the worker at {r['rate_per_second']:g}/s: " + latencies("pipeline"),
            "the query direct: " + latencies("direct"),
            f"{r['ratio']:.3g} (p99 over direct p99; +{r['added_p50_ms']:.1f} ms at p50)",
            "",
            "",
        ]
    if rid == "T4b":
        late = r["timeout_elapsed_over_timeout"]
        worst = f"{late['max']:.3f}x timeout (median {late['median']:.3f}x)" if late else "n/a"
        return [
            f"{r['timeouts']}/{r['requests']} timeouts (expected {r['expected_timeouts']}); "
            f"504 after {worst}; pending after: {r['pending_after']}",
            f"T4 path: ok p50 {r['ok_p50_ms']:.1f} ms, p99 {r['ok_p99_ms']:.1f} ms",
            "",
            "",
            "",
        ]
    if rid == "A1":
        flood, base = r["valid_p99_ms_flood"], r["valid_p99_ms_baseline"]
        run = r["runs"][-1]
        return [
            f"valid users' p99 under the flood {flood['median']:.1f} ms "
            f"({flood['min']:.1f}-{flood['max']:.1f}), p50 {r['valid_p50_ms_flood']['median']:.1f}"
            " ms",
            f"valid alone p99 {base['median']:.1f} ms ({base['min']:.1f}-{base['max']:.1f})",
            f"{r['ratio_p99_flood_over_baseline']:.2f} (p99)",
            f"last run: {run['flood_requests_per_second']:.0f} req/s, "
            f"{run['server_errors']} 5xx, {run['records_written_during_flood']} records, "
            f"{run['jwks_fetches_during_flood']} JWKS fetches (bound {run['jwks_fetch_bound']})",
            "",
        ]
    if rid == "C1":
        cells = [
            f"{name}: {figure['median']:.2f} s ({figure['min']:.2f}-{figure['max']:.2f})"
            for name, figure in r["cpu_seconds_per_1k"].items()
        ]
        rates = ", ".join(
            f"{name} {figure['median']:.0f} req/s"
            for name, figure in r["requests_per_second"].items()
        )
        p99 = ", ".join(f"{name} {figure['median']:.1f} ms" for name, figure in r["p99_ms"].items())
        return [
            "CPU-s per 1k requests: " + "; ".join(cells),
            "itself (lowest level)",
            f"{r['ratio']:.3g} (highest/lowest)",
            f"wrk p99: {p99}",
            rates,
        ]
    if rid == "U1":
        u, h = r["servers"]["uvicorn"], r["servers"]["hypercorn"]

        def pair(name: str, unit: str, scale: float = 1) -> str:
            return f"{u[name]['median'] * scale:.0f} vs {h[name]['median'] * scale:.0f} {unit}"

        return [
            "Uvicorn vs Hypercorn: HTTP produce "
            + pair("http_kafka_rps", "req/s")
            + ", no-op "
            + pair("http_noop_rps", "req/s")
            + "; WS produce "
            + pair("ws_produce_mps", "msgs/s")
            + ", echo "
            + pair("ws_echo_mps", "msgs/s"),
            "Hypercorn (same run)",
            f"{r['ratio']:.3g} (HTTP produce req/s)",
            "HTTP produce wrk p99 " + pair("http_kafka_p99_ms", "ms"),
            "HTTP produce "
            + pair("http_kafka_cpu_per_request", "us", 1e6)
            + ", WS produce "
            + pair("ws_produce_cpu_per_message", "us", 1e6),
        ]
    if rid == "W2":
        cells = []
        for run in r["runs"]:
            best = run["highest_sustained"]
            rate = (
                f"{best['rate_events_per_second']:g} ev/s = {best['frames_per_second']:.0f} "
                f"frames/s, p99 {best['p99_s'] * 1000:.0f} ms"
                if best
                else "none sustained"
            )
            cells.append(
                f"{run['connected']} conns: {run['kafka_consumers_in_gateway']} Kafka "
                f"consumer(s), {run['rss_kib_per_connection']:.0f} KiB/conn, best {rate}"
            )
        return [
            cells[-1],
            cells[0],
            f"{r['ratio_rss_per_connection']:.2f} (RSS/conn)",
            "",
            "",
        ]
    unit = r["unit"]
    extra = ""
    if rid == "T1":
        p99 = r["p99_ms_at_80pct"]
        base = r["baseline_p99_ms_same_rate"]
        extra = (
            f"p99 at 80% of peak {p99['median']:.1f} ms ({p99['min']:.1f}-{p99['max']:.1f}); "
            f"no-op app at the same rate {base['median']:.1f} ms"
        )
        for name, figure in r.get("p99_ms_by_fraction_of_peak", {}).items():
            if "80%" not in name:
                extra += f"; {name} p99 {figure['median']:.1f} ms"
    if rid == "T4":
        p50, p99 = r["p50_ms_at_100rps"], r["p99_ms_at_100rps"]
        extra = f"at 100 req/s: p50 {p50['median']:.1f} ms, p99 {p99['median']:.1f} ms"
    return [
        _fig(r["subject"], unit),
        _fig(r["baseline_figure"], unit),
        f"{r['ratio']:.3g}",
        extra,
        _cpu(r),
    ]


def _met(met: bool | None) -> str:
    return "n/a" if met is None else "yes" if met else "no"


def _load(env: dict[str, Any]) -> list[str]:
    before, after = env.get("load_before"), env.get("load_after")
    if not before or not after:
        return []
    return [
        "Load average (1, 5, 15 min) before the run "
        + ", ".join(f"{x:.2f}" for x in before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in after)
        + f"; event loop: {env.get('event_loop', 'asyncio')}; load generator: "
        + f"{env.get('load_generator', 'wrk')}.",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    lines = [
        f"# Benchmarks {report['date']}{' (quick)' if report['quick'] else ''}",
        "",
        f"CPU: {env['cpu']} ({env.get('cpus')} CPUs); Python {env['python']}; {versions}",
        "",
        *_load(env),
        f"Pinning: {env['pinning']}. Broker: {env.get('broker', 'local')}.",
        "",
        "Figures: median of the repetitions (min-max); baseline measured in the same run, "
        "alternating with the subject. CPU = gateway-process CPU-seconds per request/message.",
        "",
        "| id | figure | baseline | ratio | latency | gateway CPU per request | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        cells = _row(r)
        lines.append(
            f"| {r['id']} | " + " | ".join(cells) + f" | {r['target']} | {_met(r['met'])} |"
        )
    lines.append("")
    if report.get("chart"):
        lines += [f"![latency percentiles and ratios]({report['chart']})", ""]
    for r in report["results"]:
        lines.append(f"- **{r['id']}**: {r['scenario']}. Baseline: {r['baseline']}.")
        if "load_generator" in r:
            lines.append(f"  Load: {r['load_generator']}.")
    return "\n".join(lines) + "\n"
