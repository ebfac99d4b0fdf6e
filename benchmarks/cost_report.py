"""``benchmarks.cost``'s figures: ratios to the anchor, the targets' verdicts, sizing,
and the Markdown tables (what docs/performance.md shows)."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.operations import ANCHOR, DATASETS, DESCRIBE, LIST, NAMES, UPDATE
from benchmarks.report import markdown_table
from benchmarks.verdicts import verdict

# Cost per request as a share of the anchor's ("anchor / this"): SQLite, one worker.
ANCHOR_TARGETS = {UPDATE: 0.25, LIST: 0.35}
# PostgreSQL (server + its backends) over SQLite (server), CPU per request.
POSTGRES_TARGETS = {UPDATE: 1.3, LIST: 1.2}
BACKEND_UPDATE_TARGET_MS = 0.3  # PostgreSQL backends' CPU per UpdateRecords
ROUND_TRIP_TARGET = 1.0  # per call of the hot operations
HOT = (UPDATE, LIST, DESCRIBE, DATASETS)
REPLICA_FLAT = 1.1  # our reading of "CPU per request flat": within 10% of one replica


def spread(values: list[float]) -> dict[str, float] | None:
    """Median, min and max; None for no values."""
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def add_instruction_ratios(instructions: dict[str, Any]) -> None:
    """Sets each count's ``anchor_over_this``: the anchor's count over it."""
    anchor = (instructions.get(ANCHOR) or {}).get(ANCHOR)
    for counts in instructions.values():
        for count in counts.values():
            if isinstance(count, dict) and anchor:
                count["anchor_over_this"] = round(
                    anchor["instructions_per_request"] / count["instructions_per_request"], 4)


def _counted(results: dict[str, Any], database: str, operation: str) -> float | None:
    count = (results["instructions"].get(database) or {}).get(operation)
    return count.get("anchor_over_this") if isinstance(count, dict) else None


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per server and operation: medians and spreads over the rounds, every cost
    beside the anchor's of the same round."""
    rows = []
    for server in results["servers"]:
        phases = server["phases"]
        anchors = {p["round"]: p["server_cpu_us"] for p in phases if p["operation"] == ANCHOR}
        operations = list(dict.fromkeys(p["operation"] for p in phases))
        for operation in operations:
            mine = [p for p in phases if p["operation"] == operation]
            has_db = "db_backend_cpu_us" in mine[0]
            trips = (server["round_trips"] or {}).get(operation)
            rows.append({
                "server": server["name"],
                "database": server["database"],
                "replicas": server["replicas"],
                "workers": server["workers"],
                "operation": operation,
                "rounds": len(mine),
                "throughput_rps": spread([p["throughput_rps"] for p in mine]),
                "server_cpu_us": spread([p["server_cpu_us"] for p in mine]),
                "anchor_over_this_cpu": spread([
                    anchors[p["round"]] / p["server_cpu_us"] for p in mine
                    if p["server_cpu_us"] and anchors.get(p["round"])]),
                "db_backend_cpu_us": spread([p["db_backend_cpu_us"] for p in mine])
                if has_db else None,
                "db_cluster_cpu_us": spread([p["db_cluster_cpu_us"] for p in mine
                                             if p["db_cluster_cpu_us"] is not None])
                if has_db else None,
                "server_and_backends_cpu_us": spread([
                    p["server_cpu_us"] + p["db_backend_cpu_us"] for p in mine])
                if has_db else None,
                "statements_per_request": spread([p["db_statements_per_request"] for p in mine
                                                  if p["db_statements_per_request"] is not None])
                if has_db else None,
                "round_trips": trips,
            })
    return rows


def _row(summary: list[dict[str, Any]], operation: str, database: str, replicas: int = 1,
         workers: int = 1) -> dict[str, Any] | None:
    return next((r for r in summary if r["operation"] == operation and r["database"] == database
                 and r["replicas"] == replicas and r["workers"] == workers), None)


def _median(value: dict[str, float] | None) -> float | None:
    return value["median"] if value else None


def _over(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    summary = results["summary"]
    out = []
    for operation, target in ANCHOR_TARGETS.items():
        if "sqlite" in results["instructions"]:
            out.append(verdict(f"{NAMES[operation]}: anchor / this, instructions, sqlite",
                               _counted(results, "sqlite", operation), "%", target))
        if row := _row(summary, operation, "sqlite"):
            out.append(verdict(f"{NAMES[operation]}: anchor / this, server CPU, sqlite",
                               _median(row["anchor_over_this_cpu"]), "%", target))
    for operation in HOT:
        pg, sq = _row(summary, operation, "postgresql"), _row(summary, operation, "sqlite")
        if pg and sq:
            out.append(verdict(
                f"{NAMES[operation]}: PostgreSQL (server + backends) / SQLite, CPU per request",
                _over(_median(pg["server_and_backends_cpu_us"]), _median(sq["server_cpu_us"])),
                "x", POSTGRES_TARGETS.get(operation), at_most=True))
    pg_update = _row(summary, UPDATE, "postgresql")
    if pg_update:
        backend = _median(pg_update["db_backend_cpu_us"])
        out.append(verdict(f"{NAMES[UPDATE]}: PostgreSQL backend CPU per request",
                           None if backend is None else backend / 1000, "ms",
                           BACKEND_UPDATE_TARGET_MS, at_most=True))
    for operation in HOT:
        row = _row(summary, operation, "postgresql")
        if row and row["round_trips"]:
            out.append(verdict(f"{NAMES[operation]}: round trips to PostgreSQL per call",
                               round(row["round_trips"]["round_trips"], 1), "",
                               ROUND_TRIP_TARGET, at_most=True))
    replicas = max((s["replicas"] for s in results["servers"]), default=1)
    for operation in HOT:
        one, many = _row(summary, operation, "postgresql"), _row(summary, operation,
                                                                  "postgresql", replicas)
        if one and many and replicas > 1:
            out.append(verdict(
                f"{NAMES[operation]}: {replicas} replicas / 1, CPU per request (server + "
                "backends)", _over(_median(many["server_and_backends_cpu_us"]),
                                   _median(one["server_and_backends_cpu_us"])),
                "x", REPLICA_FLAT, at_most=True))
    return out


# --- Markdown ---------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _spread(value: dict[str, float] | None, fmt: str = "{:,.0f}") -> str:
    if not value:
        return ""
    if value["min"] == value["max"]:
        return fmt.format(value["median"])
    return (f"{fmt.format(value['median'])} ({fmt.format(value['min'])}–"
            f"{fmt.format(value['max'])})")


_PCT = "{:.1%}"


def instructions_table(results: dict[str, Any]) -> str:
    rows = [[server, NAMES[operation], _n(c["instructions_per_request"]),
             "" if c.get("anchor_over_this") is None else _PCT.format(c["anchor_over_this"]),
             _n(c["uncorrected"]), _PCT.format(c["idle_share"] or 0.0)]
            for server, counts in results["instructions"].items()
            for operation, c in counts.items() if isinstance(c, dict)]
    return markdown_table(["server", "operation", "instructions per request", "anchor / this",
                           "uncorrected", "idle server's share, taken out"],
                          rows, numeric_from=2)


def cpu_table(results: dict[str, Any]) -> str:
    rows = [[r["server"], NAMES[r["operation"]], _spread(r["throughput_rps"]),
             _spread(r["server_cpu_us"]), _spread(r["anchor_over_this_cpu"], _PCT),
             _spread(r["db_backend_cpu_us"]), _spread(r["db_cluster_cpu_us"]),
             _spread(r["statements_per_request"], "{:.1f}")]
            for r in results["summary"]]
    return markdown_table(["server", "operation", "req/s", "server CPU us per request",
                           "anchor / this (CPU)", "PostgreSQL backends us per request",
                           "whole cluster us per request", "statements per request"],
                          rows, numeric_from=2)


def round_trip_table(results: dict[str, Any]) -> str:
    rows = [[r["server"], NAMES[r["operation"]], _n(r["round_trips"]["round_trips"], 2),
             _n(r["round_trips"]["sends"], 2), _n(r["round_trips"]["receive_calls"], 2),
             "" if r["round_trips"]["statements"] is None
             else _n(r["round_trips"]["statements"], 2)]
            for r in results["summary"] if r["round_trips"]]
    return markdown_table(["server", "operation", "round trips", "send calls",
                           "receive calls", "statements"], rows, numeric_from=2)


def sizing_table(results: dict[str, Any]) -> str:
    """CPU per request read as cores per 1,000 requests a second (1 ms = 1 core)."""
    rows = []
    for r in results["summary"]:
        if r["operation"] == ANCHOR:
            continue
        server = _median(r["server_cpu_us"])
        backends, cluster = _median(r["db_backend_cpu_us"]), _median(r["db_cluster_cpu_us"])
        total = None if server is None else server + (backends or 0.0)
        rows.append([r["server"], NAMES[r["operation"]], _n(_over(server, 1000), 2),
                     _n(_over(backends, 1000), 2), _n(_over(cluster, 1000), 2),
                     _n(_over(total, 1000), 2)])
    return markdown_table(["server", "operation", "cogsync cores", "PostgreSQL backend cores",
                           "whole cluster cores", "cogsync + backends"], rows, numeric_from=2)


def idle_table(results: dict[str, Any]) -> str:
    rows = [[s["name"], _n(s["idle"]["server_cpu_ms_per_second"], 1),
             _n(s["idle"]["db_backend_cpu_ms_per_second"], 1),
             _n(s["idle"]["db_cluster_cpu_ms_per_second"], 1),
             _n(s["idle"]["statements_per_second"], 1),
             ", ".join(str(n) for n in s.get("connections") or ())]
            for s in results["servers"]]
    return markdown_table(["server", "cogsync CPU ms per second", "PostgreSQL backends ms per "
                           "second", "whole cluster ms per second", "statements per second",
                           "connections to PostgreSQL per replica (after the load)"], rows)


def verdict_table(results: dict[str, Any]) -> str:
    rows = []
    for v in results["verdicts"]:
        value = "" if v["value"] is None else {
            "%": f"{v['value']:.1%}", "x": f"{v['value']:.2f}x",
            "ms": f"{v['value']:.3f} ms"}.get(v["unit"], f"{v['value']:g}")
        rows.append([v["what"], value, (v["target"] or "").strip(),
                     {True: "met", False: "**not met**", None: ""}[v["met"]]])
    return markdown_table(["comparison (same run)", "value", "target", "verdict"], rows, 1, 2)


def tables(results: dict[str, Any]) -> str:
    """Every table of a cost run that has something to show, as Markdown."""
    sections = [
        ("Instructions per request (callgrind, whole server, one connection)",
         instructions_table, bool(results["instructions"])),
        ("CPU per request and throughput (closed loop; median (min–max) over rounds)",
         cpu_table, bool(results["summary"])),
        ("Round trips to PostgreSQL per request (strace)", round_trip_table,
         any(r["round_trips"] for r in results["summary"])),
        ("Cores per 1,000 requests/s (from CPU per request)", sizing_table,
         bool(results["summary"])),
        ("Idle servers (no request; what their timers cost)", idle_table,
         bool(results["servers"])),
        ("Verdicts", verdict_table, bool(results["verdicts"])),
    ]
    notes = []
    if results["postgres"]:
        notes.append(f"PostgreSQL: {results['postgres']}.")
    if results["callgrind_clock"]:
        notes.append(f"Servers' clock under callgrind: {results['callgrind_clock']}.")
    notes += [f"Not measured: {part}: {why}." for part, why in results["skipped"].items()]
    return "\n\n".join(notes) + "\n\n" + "".join(
        f"### {title}\n\n{table(results)}\n\n" for title, table, present in sections if present)


def print_report(results: dict[str, Any]) -> str:
    """Prints the tables and returns them as one Markdown text."""
    info = results["machine"]
    text = (f"Machine: {info['nproc']} x {info['cpu_model']}, {info['python']}; load average "
            f"{info['loadavg_at_start'][0]:.2f} at the start. Code: `{info['code']}`. "
            f"Command: `{results['command'].strip()}` ({results['seconds']:.0f} s).\n\n"
            + tables(results))
    print("\n" + text, flush=True)
    print(f"request errors: {results['request_errors']}")
    for check in results["failed_checks"]:
        print(f"check FAILED: {check}")
    return text
