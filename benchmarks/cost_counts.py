"""The counted figures of ``benchmarks.cost``: instructions per request under callgrind,
and round trips to PostgreSQL per request under strace (see ``benchmarks.callgrind``,
``benchmarks.roundtrips`` and ``benchmarks.slow_clock`` for the methods).

Both count over real sockets, one keep-alive connection, one request at a time, after a
warm-up that is not counted, and both take the difference between a phase of 2N requests
and one of N, over N.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import roundtrips, slow_clock
from benchmarks.anchor import AnchorServer
from benchmarks.callgrind import Callgrind
from benchmarks.load import KeepAliveClient
from benchmarks.operations import ANCHOR, COGSYNC_OPERATIONS, NAMES, CogsyncOperations
from benchmarks.pg_cluster import Cluster
from benchmarks.pg_probe import PostgresProbe
from benchmarks.postgres import POSTGRES_URL
from benchmarks.server import running_replicas, running_server

SETTLE_SECONDS = 0.5  # callgrind: after a warm-up, before the idle window


def say(text: str) -> None:
    print(text, flush=True)


# --- instructions per request -----------------------------------------------------------


def count_operation(counter: Callgrind, root: int, client: KeepAliveClient,
                    requests: list[bytes], n: int, warm: int,
                    idle_seconds: float) -> dict[str, Any]:
    """``requests``: warm + 3n of them. Instructions of the server's tree per request.

    Under valgrind a request lasts tens of times longer than natively, so the work a
    server does by the clock (polls, flushes, checkpoints) weighs that much more per
    request. So: the idle server is counted first for ``idle_seconds`` (its rate per
    second), then n requests, then 2n; each window is timed, and the figure is
    (count of 2n - count of n - idle rate x the extra time the n more took) / n. The
    uncorrected figure and the rate are kept beside it."""
    clock = time.perf_counter
    client.send_all(requests[:warm])  # not instrumented: several times faster
    counter.instrument(root, True)
    try:
        time.sleep(SETTLE_SECONDS)  # work the warm-up left behind (a checkpoint, say)
        counter.zero(root)
        began = clock()
        time.sleep(idle_seconds)
        idle = counter.dump(root)
        idle_ended = clock()
        client.send_all(requests[warm:warm + n])
        first = counter.dump(root)
        first_ended = clock()
        client.send_all(requests[warm + n:warm + 3 * n])
        second = counter.dump(root)
        second_ended = clock()
    finally:
        counter.instrument(root, False)
    idle_rate = idle / (idle_ended - began)
    extra_seconds = (second_ended - first_ended) - (first_ended - idle_ended)
    background = idle_rate * extra_seconds
    return {
        "instructions_per_request": round((second - first - background) / n),
        "uncorrected": round((second - first) / n),
        "n": n,
        "count_n": first,
        "count_2n": second,
        "seconds_n": round(first_ended - idle_ended, 2),
        "seconds_2n": round(second_ended - first_ended, 2),
        "idle_instructions_per_second": round(idle_rate),
        "idle_share": round(background / (second - first), 4) if second > first else None,
    }


def count_anchor(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    counter = Callgrind(folder, args.faketime)
    anchor = AnchorServer(wrapper=counter.wrapper()).start()
    try:
        client = KeepAliveClient(anchor.host, anchor.port)
        n, warm = args.requests, args.warm_requests
        result = count_operation(counter, anchor.pid, client, [anchor.request()] * (warm + 3 * n),
                                 n, warm, args.idle_seconds)
        client.close()
    finally:
        anchor.stop()
    say(f"  {NAMES[ANCHOR]:40} {result['instructions_per_request']:>12,}")
    return {ANCHOR: result}


def count_cogsync(args: argparse.Namespace, database: str, cluster: Cluster | None,
                  folder: Path) -> dict[str, Any]:
    counter = Callgrind(folder, args.faketime)
    url = cluster.url if cluster else POSTGRES_URL
    counts: dict[str, Any] = {}
    with running_server(database, 1, postgres_url=url, wrapper=counter.wrapper()) as server:
        ops = CogsyncOperations(server, writers=1)
        ops.setup()
        client = KeepAliveClient(server.host, server.port)
        n, warm = args.requests, args.warm_requests
        for operation in COGSYNC_OPERATIONS:
            requests = ops.requests(operation, warm + 3 * n)
            counts[operation] = count_operation(counter, server.pid, client, requests, n, warm,
                                                args.idle_seconds)
            ops.count(operation, len(requests))
            say(f"  {NAMES[operation]:40} "
                 f"{counts[operation]['instructions_per_request']:>12,}")
        client.close()
        counts["write_check"] = ops.verify() or "ok"
    return counts


def measure_instructions(args: argparse.Namespace, cluster: Cluster | None,
                         folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in args.instructions:
        say(f"\ninstructions per request under callgrind, {name} (N={args.requests}, "
             "one keep-alive connection)")
        with tempfile.TemporaryDirectory(dir=folder) as dumps:
            out[name] = (count_anchor(args, Path(dumps)) if name == "anchor"
                         else count_cogsync(args, name, cluster, Path(dumps)))
    return out


# --- round trips per request ------------------------------------------------------------


def measure_round_trips(args: argparse.Namespace, cluster: Cluster,
                        folder: Path) -> dict[str, Any]:
    """Round trips to PostgreSQL per request of each operation, on a server of their own
    whose clock runs slower (``benchmarks.slow_clock``) so that its timers' statements
    stay out of the counts; without libfaketime, on the real clock, the idle rate taken
    out."""
    clock = "slowed" if args.faketime else "real, idle rate taken out"
    say(f"\nround trips to PostgreSQL per request (strace, N={args.trip_requests}, server's "
         f"clock {clock})")
    wrapper = slow_clock.slow_clock(args.faketime)
    with running_replicas(1, cluster.url, wrapper=wrapper) as servers, \
            PostgresProbe(cluster, [servers[0].pid]) as probe:
        ops = CogsyncOperations(servers[0], writers=1)
        ops.setup()
        trips = count_round_trips(ops, probe, args.trip_requests, args.warm_requests,
                                  args.idle_seconds, folder)
        trips["write_check"] = ops.verify() or "ok"
    trips["clock"] = clock
    return trips


def count_round_trips(ops: CogsyncOperations, probe: PostgresProbe, n: int, warm: int,
                      idle_seconds: float, folder: Path) -> dict[str, Any]:
    """Per operation, under strace, one keep-alive connection: (a phase of 2n requests
    minus one of n, minus what the idle server does by the clock in the time the n more
    took: the outbox lease, session counts) over n."""
    client = KeepAliveClient(ops.server.host, ops.server.port)

    def traced(batch: list[bytes], idle: float = 0.0) -> tuple[list[int], float]:
        start = probe.snapshot()
        with roundtrips.Strace(ops.server.pid, probe.port, folder / "strace.txt") as trace:
            began = time.perf_counter()
            client.send_all(batch)
            time.sleep(idle)
            seconds = time.perf_counter() - began
        statements = probe.since(start).statements or 0
        assert trace.traffic is not None
        t = trace.traffic
        return [t.round_trips, t.sends, t.receives, statements], seconds

    idle, idle_seconds = traced([], idle_seconds)
    rates = [count / idle_seconds for count in idle]
    out: dict[str, Any] = {"idle_per_second": dict(zip(
        ("round_trips", "sends", "receive_calls", "statements"),
        (round(r, 2) for r in rates), strict=True))}
    for operation in COGSYNC_OPERATIONS:
        requests = ops.requests(operation, warm + 3 * n)
        client.send_all(requests[:warm])
        one, t1 = traced(requests[warm:warm + n])
        two, t2 = traced(requests[warm + n:])
        ops.count(operation, len(requests))
        per = [round((b - a - rate * (t2 - t1)) / n, 2)
               for a, b, rate in zip(one, two, rates, strict=True)]
        out[operation] = {"n": n, "round_trips": per[0], "sends": per[1],
                          "receive_calls": per[2],
                          "statements": per[3] if probe.cluster.private else None}
        say(f"  {NAMES[operation]:40} round trips {per[0]:6.2f}, sends {per[1]:6.2f}, "
             f"statements {out[operation]['statements']}")
    client.close()
    return out
