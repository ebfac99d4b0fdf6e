"""The comparisons a run is judged by, each between figures of the same run, and the
targets of the issue (benchmarks, not timed tests)."""

from __future__ import annotations

from typing import Any

from benchmarks.half_peak import P99_TARGET_MS
from benchmarks.run import BARE, LIST, TARGETS, UPDATE

MOTO_TARGET = 10.0  # UpdateRecords throughput over moto's equivalent transaction
GROWTH_LATENCY_TARGET = 1.5  # latency at the largest step over that at the first
GROWTH_MEMORY_TARGET = 1.25  # our reading of "memory independent of stored data size"


def verdict(what: str, value: float | None, unit: str, target: float | None = None,
             at_most: bool = False) -> dict[str, Any]:
    """``unit``: "ms", "x" (a ratio) or "%" (a ratio shown as a share)."""
    met = None
    if value is not None and target is not None:
        met = value <= target if at_most else value >= target
    shown = None
    if target is not None:
        amount = {"%": f"{target:.0%}", "x": f"{target:g}x"}.get(unit, f"{target:g} {unit}")
        shown = f"{'<=' if at_most else '>='} {amount}"
    return {"what": what, "value": None if value is None else round(value, 3), "unit": unit,
            "target": shown, "met": met}


def _rps(server: dict[str, Any], name: str) -> float:
    return next(s["throughput_rps"] for s in server["summary"] if s["scenario"] == name)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def comparisons(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    moto = {row["scenario"]: row for row in (results["moto"] or {}).get("phases", [])}
    moto_update = next((r["throughput_rps"] for n, r in moto.items() if "Transact" in n), 0.0)
    moto_query = next((r["throughput_rps"] for n, r in moto.items() if "Query" in n), 0.0)
    one = {s["database"]: s for s in results["servers"] if s["workers"] == 1}
    two = {s["database"]: s for s in results["servers"] if s["workers"] == 2}
    for database, server in one.items():
        for s in server["summary"]:
            if s["scenario"] in TARGETS:
                out.append(verdict(f"{s['scenario']} / bare endpoint, {database}",
                                    s["ratio_to_bare"], "%", TARGETS[s["scenario"]]))
        if moto:
            out.append(verdict(f"UpdateRecords / moto TransactWriteItems, {database}",
                                _ratio(_rps(server, UPDATE), moto_update), "x", MOTO_TARGET))
            out.append(verdict(f"ListRecords / moto Query, {database}",
                                _ratio(_rps(server, LIST), moto_query), "x"))
        for h in server["half_peak"]:
            out.append(verdict(f"{h['scenario']} p99 at half of peak, {database}",
                                h["p99_ms"], "ms",
                                P99_TARGET_MS if database == "sqlite" else None, at_most=True))
        if database in two:
            for name in (BARE, UPDATE, LIST):
                out.append(verdict(f"{name}: 2 workers / 1 worker, {database}",
                                    _ratio(_rps(two[database], name), _rps(server, name)), "x"))
    growth = results["growth"]
    if growth and len(growth["steps"]) > 1:
        first, last = growth["steps"][0], growth["steps"][-1]
        span = f"{last['records']:,} / {first['records']:,} records, {growth['database']}"
        for key, name in (("update", "UpdateRecords"), ("list", "ListRecords")):
            out.append(verdict(f"{name} p50 latency at {span}",
                                _ratio(last[key]["p50_ms"], first[key]["p50_ms"]), "x",
                                GROWTH_LATENCY_TARGET, at_most=True))
            out.append(verdict(f"{name} p99 latency at {span}",
                                _ratio(last[key]["p99_ms"], first[key]["p99_ms"]), "x"))
        out.append(verdict(f"server memory (RSS) at {span}",
                            _ratio(last["rss_mib"], first["rss_mib"]), "x",
                            GROWTH_MEMORY_TARGET, at_most=True))
    return out
