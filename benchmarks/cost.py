"""What a request costs the server, as a ratio to a fixed anchor measured in the same run.

    python -m benchmarks.cost [--json cost.json] [--markdown cost.md]

Servers: the fixed anchor (``benchmarks.anchor``: bare Starlette on uvicorn, one worker,
httptools, uvloop); ``cogsync serve`` on SQLite; on PostgreSQL; ``--replicas`` servers on
one PostgreSQL database; with ``--workers`` N, also N workers on each database. Whatever
``cogsync serve`` runs is measured as a black box: its whole process tree.

Operations: the anchor's route; on cogsync, the bare endpoint, UpdateRecords (10
patches, durable), ListRecords (100 records, a new sync session each), DescribeDataset
and ListDatasets (``benchmarks.operations``).

Per server and operation, in one run:

(a) instructions per request (callgrind): the server runs under valgrind, driven from
    outside over one keep-alive connection, every thread of every process counted; the
    count of 2N requests minus that of N, over N, on the same server, so start-up, set-up
    and warm-up cancel (``benchmarks.callgrind``). The anchor, SQLite and PostgreSQL,
    one worker each.
(b) server CPU time per request: utime + stime of the server's process tree from /proc,
    without valgrind, under a closed loop of ``--concurrency`` connections for
    ``--seconds``, in ``--rounds`` rounds; each round measures the anchor right before
    the server's operations. Medians and spread (min to max) over the rounds.
(c) throughput of those same phases.

On PostgreSQL also: the CPU per request of the backends serving the server (and of the
whole cluster when it is a private one, the default), statements per request
(pg_stat_statements, private cluster) and round trips per request (strace), see
``benchmarks.pg_probe`` and ``benchmarks.roundtrips``. The counted figures (instructions,
round trips) are taken in ``benchmarks.cost_counts``; docs/performance.md explains it all.

Exit status 1: a request or a check failed; 3 (with ``--strict``): a target missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks import callgrind, roundtrips, slow_clock
from benchmarks.anchor import AnchorServer
from benchmarks.cost_counts import measure_instructions, measure_round_trips, say
from benchmarks.cost_report import add_instruction_ratios, print_report, summarize, verdicts
from benchmarks.load import PhaseResult, run_phase, run_spread_phase
from benchmarks.machine import machine
from benchmarks.operations import (
    ANCHOR,
    COGSYNC_OPERATIONS,
    DISTINCT,
    NAMES,
    CogsyncOperations,
)
from benchmarks.pg_cluster import Cluster, private_cluster, shared_cluster
from benchmarks.pg_probe import DatabaseCost, PostgresProbe, database_sockets
from benchmarks.procs import tree_cpu_seconds
from benchmarks.run import add_phase_arguments, check_phase_arguments
from benchmarks.server import BenchServer, running_replicas, running_server

DATABASES = ("sqlite", "postgresql")

# --- (b) and (c) CPU per request and throughput -----------------------------------------


def _phase_row(round_no: int, operation: str, result: PhaseResult,
               database: DatabaseCost | None) -> dict[str, Any]:
    per = (1e6 / result.requests) if result.requests else 0.0
    row = {
        "round": round_no,
        "operation": operation,
        "requests": result.requests,
        "errors": result.errors,
        "first_error": result.first_error,
        "ran_out_of_requests": result.exhausted,
        "seconds": round(result.seconds, 3),
        "throughput_rps": round(result.throughput, 1),
        "server_cpu_us": round(result.server_cpu * per, 1),
        "server_cpu_pct": round(100 * result.server_cpu / result.seconds, 1)
        if result.seconds else 0.0,
        "client_cpu_pct": round(100 * result.client_cpu / result.seconds, 1)
        if result.seconds else 0.0,
    }
    if database is not None:
        row.update({
            "db_backend_cpu_us": round(database.backend_cpu * per, 1),
            "db_backends": database.backends,
            "db_lost_backends": database.lost_backends,
            "db_cluster_cpu_us": None if database.cluster_cpu is None
            else round(database.cluster_cpu * per, 1),
            "db_statements_per_request": None if database.statements is None
            else round(database.statements / result.requests, 2) if result.requests else None,
        })
    return row


def idle_phase(servers: Sequence[BenchServer], probe: PostgresProbe | None,
               seconds: float) -> dict[str, Any]:
    """What the servers (and their database) spend per second with no request at all:
    their timers' work, which the callgrind counts leave out (see benchmarks.callgrind)."""
    start = probe.snapshot() if probe else None
    cpu = sum(tree_cpu_seconds(server.pid) for server in servers)
    began = time.perf_counter()
    time.sleep(seconds)
    cpu = sum(tree_cpu_seconds(server.pid) for server in servers) - cpu
    elapsed = time.perf_counter() - began
    database = probe.since(start) if probe and start else None
    return {
        "seconds": round(elapsed, 2),
        "server_cpu_ms_per_second": round(1000 * cpu / elapsed, 2),
        "db_backend_cpu_ms_per_second": None if database is None
        else round(1000 * database.backend_cpu / elapsed, 2),
        "db_cluster_cpu_ms_per_second": None if database is None or database.cluster_cpu is None
        else round(1000 * database.cluster_cpu / elapsed, 2),
        "statements_per_second": None if database is None or database.statements is None
        else round(database.statements / elapsed, 1),
    }


def anchor_phase(args: argparse.Namespace, anchor: AnchorServer, round_no: int,
                 seconds: float | None = None) -> dict[str, Any]:
    result = run_phase(anchor.host, anchor.port, [anchor.request()],
                       concurrency=args.concurrency, seconds=seconds or args.seconds,
                       repeat=True, server_pid=anchor.pid)
    return _phase_row(round_no, ANCHOR, result, None)


def cpu_phase(servers: Sequence[CogsyncOperations], operation: str, seconds: float,
              concurrency: int, probe: PostgresProbe | None, round_no: int) -> dict[str, Any]:
    """One closed-loop phase of ``operation`` over every server (replicas) at once."""
    targets, repeat = [], True
    for ops in servers:
        requests, repeat = ops.for_phase(operation, seconds)
        targets.append((ops.server.host, ops.server.port, requests))
    start = probe.snapshot() if probe else None
    result = run_spread_phase(targets, concurrency=concurrency, seconds=seconds,
                              repeat=repeat, server_pids=[ops.server.pid for ops in servers])
    database = probe.since(start) if probe and start else None
    for ops, sent in zip(servers, result.sent_per_target, strict=True):
        ops.count(operation, sent, result.throughput / len(servers))
    return _phase_row(round_no, operation, result, database)


@contextmanager
def cogsync_servers(database: str, replicas: int, workers: int,
                    cluster: Cluster | None) -> Iterator[list[BenchServer]]:
    """New servers on a new database: SQLite (one server), or ``replicas`` servers on a
    new schema of the cluster."""
    if database == "sqlite":
        with running_server("sqlite", workers) as server:
            yield [server]
    else:
        assert cluster is not None
        with running_replicas(replicas, cluster.url, workers) as servers:
            yield servers


def measure_cpu(args: argparse.Namespace, anchor: AnchorServer, database: str,
                replicas: int, workers: int, cluster: Cluster | None,
                with_round_trips: bool, folder: Path) -> dict[str, Any]:
    name = database + (f", {replicas} replicas" if replicas > 1 else "") + (
        f", {workers} workers" if workers > 1 else "")
    say(f"\nCPU per request, {name}: {args.rounds} round(s) of {args.seconds:g} s phases, "
         f"{args.concurrency} connection(s)" + (" to each replica" if replicas > 1 else ""))
    rows: list[dict[str, Any]] = []
    trips = None
    with cogsync_servers(database, replicas, workers, cluster) as servers, ExitStack() as stack:
        probe = (stack.enter_context(PostgresProbe(cluster, [s.pid for s in servers]))
                 if cluster and database == "postgresql" else None)
        fleet = [CogsyncOperations(servers[0], writers=args.concurrency)]
        fleet += [CogsyncOperations(s, 1000 * i, lists_from=fleet[0], writers=args.concurrency)
                  for i, s in enumerate(servers[1:], 1)]
        for ops in fleet:
            ops.setup()
        idle = idle_phase(servers, probe, args.idle_seconds)
        say(f"  idle: {idle['server_cpu_ms_per_second']} ms of CPU a second"
             + (f", PostgreSQL backends {idle['db_backend_cpu_ms_per_second']} ms"
                if probe else ""))
        for round_no in range(1, args.rounds + 1):
            rows.append(anchor_phase(args, anchor, round_no))
            for operation in COGSYNC_OPERATIONS:
                if round_no == 1 and args.warmup:
                    cpu_phase(fleet, operation, args.warmup, args.concurrency, None, 0)
                rows.append(cpu_phase(fleet, operation, args.seconds, args.concurrency, probe,
                                      round_no))
            _print_round(rows[-1 - len(COGSYNC_OPERATIONS):])
        connections = None
        if probe is not None:  # each replica's connections to PostgreSQL, after the load
            connections = [sum(len(fds) for fds in database_sockets([s.pid], probe.port)
                               .values()) for s in servers]
            say(f"  connections to PostgreSQL per replica: {connections}")
        problems = [problem for ops in fleet if (problem := ops.verify())]
    if with_round_trips and cluster is not None:
        trips = measure_round_trips(args, cluster, folder)
        if trips["write_check"] != "ok":
            problems.append(f"round trips: {trips['write_check']}")
    say(f"  write check: {'; '.join(problems) or 'every acknowledged UpdateRecords applied once'}")
    return {"name": name, "database": database, "replicas": replicas, "workers": workers,
            "idle": idle, "phases": rows, "round_trips": trips, "connections": connections,
            "write_check": "; ".join(problems) or "ok"}


def _print_round(rows: list[dict[str, Any]]) -> None:
    anchor = rows[0]["server_cpu_us"]
    for row in rows:
        db = f"  db {row['db_backend_cpu_us']:7.0f} us" if "db_backend_cpu_us" in row else ""
        ratio = f"{anchor / row['server_cpu_us']:6.1%}" if row["server_cpu_us"] else "   n/a"
        say(f"  round {row['round']} {NAMES[row['operation']]:40} {row['throughput_rps']:8.0f} "
             f"req/s {row['server_cpu_us']:7.0f} us  anchor/this {ratio}{db}"
             + (f"  errors {row['errors']}: {row['first_error']}" if row["errors"] else ""))


# --- the command ------------------------------------------------------------------------


def _list(text: str) -> list[str]:
    return [item for item in text.split(",") if item and item != "none"]


def add_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The options of a cost run (``prefix``: ``cost-`` inside ``benchmarks.all``)."""
    def add(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{prefix}{name}", **kwargs)

    if prefix:
        add("seconds", type=float, default=2.0,
            help="timed length of each CPU phase (default 2)")
    add("requests", type=int, default=30,
        help="N of the counting phases (callgrind, strace): 2N minus N requests (default 30)")
    add("trip-requests", type=int, default=200,
        help="N of the round-trip phases (strace, natively fast): 2N minus N requests "
        "(default 200)")
    add("warm-requests", type=int, default=150,
        help="requests before each counting phase, not counted: every distinct request "
        "of an operation, and enough for each database connection to prepare its "
        "statements (psycopg does at the fifth use); at least 16 (default 150)")
    add("rounds", type=int, default=3,
        help="rounds of CPU phases, each with the anchor measured first (default 3)")
    add("instructions", type=_list, default=None,
        help="servers to count under callgrind: anchor,sqlite,postgresql or none "
        "(default: the anchor and every database measured)")
    add("postgres", default="private",
        help="'private' (default): a PostgreSQL cluster of the run's own, started with "
        "initdb, with pg_stat_statements; or the URL of an existing one (no statement "
        "counts, no whole-cluster CPU)")
    add("replicas", type=int, default=3,
        help="servers on one PostgreSQL database, measured against one (default 3; 0 or "
        "1: not measured)")
    add("workers", type=int, default=0,
        help="also measure each database with this many workers in one server (default: "
        "not measured)")
    add("clock", choices=["slow", "real"], default="slow",
        help="the clock of the servers counted under callgrind: 'slow' (default; 1,000 "
        "times slower, with libfaketime, so that their timers do not fire while requests "
        "are counted) or 'real' (their timers' work is estimated from an idle window and "
        "taken out: noisier)")
    add("cpu", action=argparse.BooleanOptionalAction, default=True,
        help="measure CPU per request and throughput (default on; --no-cpu: counts only)")
    add("round-trips", action=argparse.BooleanOptionalAction, default=True,
        help="count round trips to PostgreSQL per request with strace (default on)")
    add("idle-seconds", type=float, default=3.0,
        help="length of each idle window: the idle servers' CPU, and the idle rate that "
        "the counts take out (default 3)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    databases: list[str], prefix: str = "") -> None:
    """Checks the options of a cost run (as ``from_prefixed`` gives them, in
    ``benchmarks.all``) and fills in the default servers to count."""
    flag = f"--{prefix}"
    if args.instructions is None:
        args.instructions = ["anchor", *databases]
    if not set(args.instructions) <= {"anchor", *DATABASES}:
        parser.error(f"{flag}instructions takes anchor, sqlite, postgresql or none")
    if min(args.requests, args.trip_requests, args.rounds) < 1 or args.warm_requests < DISTINCT:
        parser.error(f"{flag}requests, {flag}trip-requests and {flag}rounds must be >= 1, "
                     f"{flag}warm-requests >= {DISTINCT}")
    if args.idle_seconds <= 0 or not 0 < args.seconds <= 300:
        parser.error(f"{flag}idle-seconds must be positive, {flag}seconds in (0, 300]")


def from_prefixed(args: argparse.Namespace, prefix: str = "cost_") -> argparse.Namespace:
    """The cost options of a ``benchmarks.all`` run (``--cost-...``), as this command's."""
    values = {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}
    return argparse.Namespace(warmup=min(args.warmup, 0.5), concurrency=args.concurrency,
                              **values)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_phase_arguments(parser)
    parser.set_defaults(seconds=2.0, warmup=0.5)
    add_arguments(parser)
    parser.add_argument("--databases", type=_list, default=list(DATABASES),
                        help="comma-separated: sqlite,postgresql (default both)")
    parser.add_argument("--json", metavar="FILE", help="write the results to this file")
    parser.add_argument("--markdown", metavar="FILE", help="write the tables to this file")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 when a target is not met")
    args = parser.parse_args(argv)
    check_phase_arguments(parser, args)
    if not args.databases or not set(args.databases) <= set(DATABASES):
        parser.error("--databases takes sqlite, postgresql or sqlite,postgresql")
    check_arguments(parser, args, args.databases)
    return args


def measure_cost(args: argparse.Namespace, databases: Sequence[str]) -> dict[str, Any]:
    """Every part of a cost run; the results as one dictionary (see ``main``)."""
    started = time.monotonic()
    skipped: dict[str, str] = {}
    counted = list(args.instructions)
    if counted and not callgrind.available():
        skipped["instructions"] = "valgrind (with callgrind_control) is not installed"
        counted = []
    args.faketime = slow_clock.faketime_library() if args.clock == "slow" else None
    if counted and args.clock == "slow" and args.faketime is None:
        skipped["slow clock"] = ("libfaketime (Debian's faketime package) is not installed: "
                                 "counted with the real clock, the idle rate taken out")
    with_trips = args.round_trips and args.cpu and "postgresql" in databases
    if with_trips and not roundtrips.available():
        skipped["round_trips"] = "strace is not installed"
        with_trips = False
    for part, reason in skipped.items():
        say(f"{part} not measured: {reason}")
    servers = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cogsync-cost-")))
        cluster = None
        if "postgresql" in databases:
            cluster = stack.enter_context(private_cluster() if args.postgres == "private"
                                          else shared_cluster(args.postgres))
        instructions = measure_instructions(
            argparse.Namespace(**{**vars(args), "instructions": counted}), cluster, folder)
        add_instruction_ratios(instructions)
        if args.cpu:
            anchor = AnchorServer().start()
            stack.callback(anchor.stop)
            anchor_phase(args, anchor, 0, min(args.seconds, 1.0))  # warm-up
        for database in databases if args.cpu else ():
            servers.append(measure_cpu(args, anchor, database, 1, 1, cluster,
                                       with_trips and database == "postgresql", folder))
            if database == "postgresql" and args.replicas > 1:
                servers.append(measure_cpu(args, anchor, database, args.replicas, 1, cluster,
                                           False, folder))
            if args.workers > 1:
                servers.append(measure_cpu(args, anchor, database, 1, args.workers, cluster,
                                           False, folder))
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("json", "markdown", "faketime")},
        "postgres": None if "postgresql" not in databases else (
            "private cluster (initdb), pg_stat_statements" if args.postgres == "private"
            else args.postgres),
        "skipped": skipped,
        "callgrind_clock": None if not counted else (
            f"slowed ({slow_clock.SLOWER_CLOCK}, libfaketime)" if args.faketime
            else "real, idle rate taken out"),
        "instructions": instructions,
        "servers": servers,
    }
    results["summary"] = summarize(results)
    results["verdicts"] = verdicts(results)
    results["request_errors"] = sum(row["errors"] for s in servers for row in s["phases"])
    results["failed_checks"] = [
        f"{s['name']}: {s['write_check']}" for s in servers if s["write_check"] != "ok"] + [
        f"{name} under callgrind: {counts['write_check']}"
        for name, counts in instructions.items()
        if counts.get("write_check", "ok") != "ok"]
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    info = machine()
    say(f"cogsync cost per request: {info['nproc']} x {info['cpu_model']}, {info['python']}, "
         f"load average {info['loadavg_at_start'][0]:.2f}, code {info['code']}")
    results = {"command": "python -m benchmarks.cost " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": info,
        **measure_cost(args, args.databases)}
    markdown = print_report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    if results["request_errors"] or results["failed_checks"]:
        return 1
    if args.strict and not all(v["met"] for v in results["verdicts"] if v["met"] is not None):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
