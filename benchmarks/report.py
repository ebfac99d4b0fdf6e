"""The results of ``benchmarks.all`` as Markdown tables (what docs/performance.md shows)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def markdown_table(header: list[str], rows: Iterable[list[str]], numeric_from: int = 1,
           numeric_to: int | None = None) -> str:
    """A Markdown table; columns ``numeric_from`` to ``numeric_to`` are right-aligned."""
    last = len(header) if numeric_to is None else numeric_to
    rule = ["---:" if numeric_from <= i < last else "---" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _rps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f} us"


def throughput_table(results: dict[str, Any]) -> str:
    rows = []
    for server in results["servers"]:
        for s in server["summary"]:
            ratio = s["ratio_to_bare"]
            rows.append([server["database"], str(server["workers"]), s["scenario"],
                         _rps(s["throughput_rps"]), _ms(s["p50_ms"]), _ms(s["p90_ms"]),
                         _ms(s["p99_ms"]), str(s["errors"]),
                         _us(s["server_cpu_us_per_request"]),
                         "" if ratio is None else f"{ratio:.1%}"])
    return markdown_table(["database", "workers", "scenario", "req/s", "p50 ms", "p90 ms", "p99 ms",
                   "errors", "server CPU per request", "of bare"], rows, numeric_from=3)


def half_peak_table(results: dict[str, Any]) -> str:
    rows = [[server["database"], h["scenario"], _rps(h["target_rps"]),
             _rps(h["throughput_rps"]), _ms(h["p50_ms"]), _ms(h["p90_ms"]), _ms(h["p99_ms"]),
             _ms(h["max_ms"]), _ms(h["send_lag_p99_ms"]), str(h["errors"])]
            for server in results["servers"] for h in server["half_peak"]]
    return markdown_table(["database", "scenario", "sent req/s", "answered req/s", "p50 ms",
                   "p90 ms", "p99 ms", "max ms", "client send lag p99 ms", "errors"],
                  rows, numeric_from=2)


def moto_table(results: dict[str, Any]) -> str:
    moto = results["moto"]
    rows = [[r["scenario"], str(moto["concurrency"]), _rps(r["throughput_rps"]),
             _ms(r["p50_ms"]), _ms(r["p99_ms"]), str(r["errors"]),
             f"{r['server_cpu_pct']:.0f}%", _us(r["server_cpu_us_per_request"])]
            for r in moto["phases"]]
    return markdown_table(["request", "connections", "req/s", "p50 ms", "p99 ms", "errors",
                   "server CPU", "server CPU per request"], rows)


def growth_table(results: dict[str, Any]) -> str:
    rows = [[f"{s['records']:,}", f"{s['identities']:,}", f"{s['fill_seconds']:.1f}",
             _ms(s["update"]["p50_ms"]), _ms(s["update"]["p99_ms"]),
             _ms(s["list"]["p50_ms"]), _ms(s["list"]["p99_ms"]), f"{s['rss_mib']:.0f}",
             "" if s["data_mib"] is None else f"{s['data_mib']:.0f}"]
            for s in results["growth"]["steps"]]
    return markdown_table(["stored records", "identities", "fill s", "UpdateRecords p50 ms",
                   "p99 ms", "ListRecords p50 ms", "p99 ms", "server RSS MiB",
                   "database MiB"], rows, numeric_from=0)


def verdict_table(results: dict[str, Any]) -> str:
    rows = []
    for c in results["comparisons"]:
        value = "" if c["value"] is None else {
            "ms": f"{c['value']:.2f} ms", "%": f"{c['value']:.1%}"}.get(
            c["unit"], f"{c['value']:.2f}x")
        verdict = {True: "met", False: "**not met**", None: ""}[c["met"]]
        rows.append([c["what"], value, c["target"] or "", verdict])
    return markdown_table(["comparison (same run)", "value", "target", "verdict"], rows, 1, 2)


def print_report(results: dict[str, Any]) -> None:
    info = results["machine"]
    print(f"\n## Results\n\nMachine: {info['nproc']} x {info['cpu_model']}, "
          f"{info['memory_gib']:g} GiB, {info['python']}, {info['platform']}; load average "
          f"{info['loadavg_at_start'][0]:.2f} at the start. Code: `{info['code']}`. "
          f"Command: `{results['command'].strip()}` ({results['seconds']:.0f} s).\n")
    sections = [
        ("Throughput against the bare endpoint", throughput_table, lambda r: r["servers"]),
        ("Latency at half of peak (open loop)", half_peak_table,
         lambda r: any(s["half_peak"] for s in r["servers"])),
        ("moto's DynamoDB server", moto_table, lambda r: r["moto"]),
        ("Cost growth", growth_table, lambda r: r["growth"]),
        ("Verdicts", verdict_table, lambda r: r["comparisons"]),
    ]
    for title, table, present in sections:
        if present(results):
            print(f"### {title}\n\n{table(results)}\n")
    print(f"request errors: {results['request_errors']}")
    for check in results["failed_checks"]:
        print(f"check FAILED: {check}")
