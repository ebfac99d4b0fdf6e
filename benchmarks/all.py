"""Every cogsync benchmark in one run: one JSON file, one plot, the targets' verdicts.

    python -m benchmarks.all --json results.json --plot docs/performance.png

In one run, each against a baseline measured in the same run:

- throughput and latency of signed UpdateRecords (10 patches) and ListRecords (100
  records) against the bare endpoint of the same server (``benchmarks.run``'s phases),
  on SQLite and on PostgreSQL, with one and with two worker processes;
- latency at half of the peak just measured, in an open loop (one worker);
- moto's DynamoDB server doing the equivalent conditional writes and query;
- cost growth: latency and server memory from 1,000 to 1,000,000 stored records;
- cost per request against the fixed anchor (``benchmarks.cost``, options ``--cost-...``):
  instructions (callgrind), CPU and throughput, PostgreSQL's CPU and round trips.

Exit status 1: a request failed or a check failed; 3 (with ``--strict``): a target missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import cost_report
from benchmarks.cost import add_arguments as add_cost_arguments
from benchmarks.cost import check_arguments as check_cost_arguments
from benchmarks.cost import from_prefixed, measure_cost
from benchmarks.growth import Growth, growth_steps
from benchmarks.half_peak import half_peak
from benchmarks.machine import machine
from benchmarks.moto_peer import measure_moto
from benchmarks.postgres import POSTGRES_URL
from benchmarks.report import print_report
from benchmarks.run import (
    HEADER,
    LIST,
    UPDATE,
    Bench,
    add_phase_arguments,
    check_phase_arguments,
    client_ceiling,
    phase_row,
    print_rows,
)
from benchmarks.run import summarize as summarize_phases
from benchmarks.server import running_server
from benchmarks.verdicts import comparisons

PARTS = ("throughput", "half-peak", "workers", "moto", "growth", "cost")


def _list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _say(text: str) -> None:
    print(text, flush=True)


def measure_server(args: argparse.Namespace, database: str, workers: int,
                   with_half_peak: bool) -> dict[str, Any]:
    """One new server: the closed-loop phases (bare, UpdateRecords, ListRecords), then,
    optionally, both calls at half of the throughput just measured, then the write check."""
    settings = argparse.Namespace(seconds=args.seconds, warmup=args.warmup,
                                  concurrency=args.concurrency, rounds=1,
                                  scenarios=["update", "list"])
    with running_server(database, workers, postgres_url=args.postgres_url) as server:
        _say(f"\n{database}, {workers} worker(s): {server.endpoint}")
        bench = Bench(server, settings)
        bench.measure()
        summary = summarize_phases(bench.rows)
        halves = []
        if with_half_peak:
            for name in (UPDATE, LIST):
                peak = next(s["throughput_rps"] for s in summary if s["scenario"] == name)
                halves.append(half_peak(bench, name, peak, args.half_peak_seconds))
                h = halves[-1]
                _say(f"  {name} at half of peak ({h['target_rps']:.0f} req/s, open loop): "
                     f"{h['throughput_rps']:.0f} req/s, p50 {h['p50_ms']:.2f} ms, "
                     f"p90 {h['p90_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, "
                     f"{h['errors']} errors")
        problem = bench.updates.verify(server)
    _say(f"  write check: {problem or 'every acknowledged UpdateRecords applied once'}")
    return {"database": database, "workers": workers, "phases": bench.rows,
            "summary": summary, "half_peak": halves, "write_check": problem or "ok"}


def measure_growth(args: argparse.Namespace) -> dict[str, Any]:
    with running_server(args.growth_database, 1, postgres_url=args.postgres_url) as server:
        _say(f"\ncost growth on {args.growth_database}, one worker, up to "
             f"{args.growth_max:,} records")
        data_dir = server.data_dir if args.growth_database == "sqlite" else None
        growth = Growth(server, args.growth_seconds, data_dir, log=_say)
        steps = growth.run(args.growth_max)
    return {"database": args.growth_database, "probe_seconds": args.growth_seconds,
            "empty_rss_mib": growth.empty_rss_mib, "steps": steps}


def request_errors(results: dict[str, Any]) -> int:
    rows = [results["client_ceiling"]]
    for server in results["servers"]:
        rows += server["phases"] + server["half_peak"]
    rows += results["moto"]["phases"] if results["moto"] else []
    for step in results["growth"]["steps"] if results["growth"] else []:
        rows += [step["update"], step["list"]]
    cost = results["cost"]["request_errors"] if results["cost"] else 0
    return sum(row["errors"] for row in rows) + cost


def failed_checks(results: dict[str, Any]) -> list[str]:
    checks = [f"{s['database']}, {s['workers']} worker(s): {s['write_check']}"
              for s in results["servers"] if s["write_check"] != "ok"]
    if results["moto"] and results["moto"]["write_check"] != "ok":
        checks.append(results["moto"]["write_check"])
    if results["cost"]:
        checks += results["cost"]["failed_checks"]
    return checks


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.all", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_phase_arguments(parser)
    parser.add_argument("--databases", type=_list, default=["sqlite", "postgresql"],
                        help="comma-separated: sqlite,postgresql (default both)")
    parser.add_argument("--postgres-url", default=POSTGRES_URL,
                        help=f"PostgreSQL to make a schema in per server (default "
                        f"{POSTGRES_URL})")
    parser.add_argument("--half-peak-seconds", type=float,
                        help="length of each open-loop phase (default: --seconds)")
    parser.add_argument("--moto-concurrency", type=int, default=1,
                        help="connections to moto (default 1: concurrent transactions "
                        "break moto's state and answer 500)")
    parser.add_argument("--growth-max", type=int, default=1_000_000,
                        help="stored records at the last growth step (default 1,000,000)")
    parser.add_argument("--growth-seconds", type=float, default=2.0,
                        help="timed length of each growth probe (default 2)")
    parser.add_argument("--growth-database", choices=["sqlite", "postgresql"],
                        default="sqlite", help="database of the growth server (default sqlite)")
    add_cost_arguments(parser, "cost-")
    parser.add_argument("--skip", type=_list, default=[],
                        help=f"comma-separated parts to leave out: {','.join(PARTS)}")
    parser.add_argument("--json", metavar="FILE", help="write the results to this file")
    parser.add_argument("--plot", metavar="FILE", help="draw the results into this PNG")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 when a target is not met")
    args = parser.parse_args(argv)
    args.half_peak_seconds = args.half_peak_seconds or args.seconds
    check_phase_arguments(parser, args)
    if not args.databases or not set(args.databases) <= {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite, postgresql or sqlite,postgresql")
    if not set(args.skip) <= set(PARTS):
        parser.error(f"--skip takes a subset of {','.join(PARTS)}")
    if "throughput" in args.skip and not set(PARTS[1:4]) <= set(args.skip):
        parser.error("half-peak, workers and moto are compared with the throughput part")
    try:
        growth_steps(args.growth_max)
    except ValueError as error:
        parser.error(str(error))
    args.cost = from_prefixed(args)
    check_cost_arguments(parser, args.cost, args.databases, "cost-")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    info = machine()
    _say(f"cogsync benchmarks: {info['nproc']} x {info['cpu_model']}, {info['python']}, "
         f"load average {info['loadavg_at_start'][0]:.2f}, code {info['code']}")
    _say(HEADER)
    ceiling = phase_row("client ceiling (fixed reply)", 0, client_ceiling(args), None)
    print_rows([ceiling])
    servers = []
    if "throughput" not in args.skip:
        for database in args.databases:
            servers.append(measure_server(args, database, 1, "half-peak" not in args.skip))
            if "workers" not in args.skip:
                servers.append(measure_server(args, database, 2, False))
    moto = None
    if "moto" not in args.skip:
        _say(f"\nmoto's DynamoDB server, {args.moto_concurrency} connection(s)")
        moto = measure_moto(args.seconds, args.warmup, args.moto_concurrency)
        print_rows(moto["phases"])
    growth = measure_growth(args) if "growth" not in args.skip else None
    cost = None
    if "cost" not in args.skip:
        _say("\ncost per request against the fixed anchor")
        cost = measure_cost(args.cost, args.databases)

    results: dict[str, Any] = {
        "command": "python -m benchmarks.all " + " ".join(sys.argv[1:] if argv is None
                                                          else argv),
        "machine": info,
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("json", "plot", "cost", "cost_faketime")},
        "client_ceiling": ceiling,
        "servers": servers,
        "moto": moto,
        "growth": growth,
        "cost": cost,
    }
    results["comparisons"] = comparisons(results)
    results["request_errors"] = request_errors(results)
    results["failed_checks"] = failed_checks(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    print_report(results)
    if cost:
        print("## Cost per request against the fixed anchor\n\n" + cost_report.tables(cost))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        from benchmarks.plot import draw  # matplotlib: the bench extra

        draw(results, Path(args.plot))
    if results["request_errors"] or results["failed_checks"]:
        return 1
    verdicts = results["comparisons"] + (cost["verdicts"] if cost else [])
    if args.strict and not all(c["met"] for c in verdicts if c["met"] is not None):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
