"""The benchmark's own machinery, where a mistake would make the figures wrong: the open
loop's timing, process-tree sums, growth steps, the verdicts, PostgreSQL clean-up, round
trips from system calls, cost ratios to the anchor."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.cost_report import add_instruction_ratios, summarize, verdicts
from benchmarks.growth import growth_steps
from benchmarks.load import run_open_phase, run_phase
from benchmarks.procs import rss_bytes, tree_cpu_seconds, tree_pids, tree_rss_bytes
from benchmarks.roundtrips import parse
from benchmarks.verdicts import comparisons
from tests.server import backend

REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@pytest.fixture
def stalling_server() -> Iterator[int]:
    """Answers at once, except the first request of all, which it holds for 0.3 s."""
    loop = asyncio.new_event_loop()
    seen = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            seen[0] += 1
            if seen[0] == 1:
                await asyncio.sleep(0.3)
            writer.write(REPLY)

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server.sockets[0].getsockname()[1]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _request(port: int) -> list[bytes]:
    return [f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()]


def test_open_loop_times_requests_from_when_they_were_due(stalling_server: int) -> None:
    """One connection, 100 requests a second, the first answer 0.3 s late: the ~30
    requests due meanwhile wait behind it, and their latencies say so. A closed loop (or
    timing from the send) would show one slow request."""
    result = run_open_phase("127.0.0.1", stalling_server, _request(stalling_server),
                            rate=100, seconds=1.0, repeat=True, connections=1)
    assert result.errors == 0
    assert 90 <= result.requests <= 101
    slow = [latency for latency in result.latencies if latency > 0.1]
    assert len(slow) >= 15, sorted(result.latencies)[-40:]


def test_closed_loop_shows_the_stall_once(stalling_server: int) -> None:
    result = run_phase("127.0.0.1", stalling_server, _request(stalling_server),
                       concurrency=1, seconds=0.5, repeat=True)
    assert result.errors == 0
    assert len([latency for latency in result.latencies if latency > 0.1]) == 1


def test_process_tree_sums_children() -> None:
    script = ("import subprocess, sys, time; "
              "c = subprocess.Popen([sys.executable, '-c', 'x = bytearray(30_000_000); "
              "import time; time.sleep(30)']); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while len(tree_pids(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = tree_pids(parent.pid)
        assert len(pids) == 2 and pids[0] == parent.pid
        deadline = time.monotonic() + 20  # until the child's bytearray is resident
        while (tree_rss_bytes(parent.pid) < rss_bytes(parent.pid) + 25_000_000
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert tree_rss_bytes(parent.pid) >= rss_bytes(parent.pid) + 25_000_000
        assert tree_cpu_seconds(parent.pid) > 0
    finally:
        for pid in reversed(tree_pids(parent.pid)):
            subprocess.run(["kill", str(pid)], check=False)
        parent.wait(10)


def test_growth_steps() -> None:
    assert growth_steps(1_000_000) == [1_000, 10_000, 100_000, 1_000_000]
    assert growth_steps(2_000) == [1_000, 2_000]
    assert growth_steps(1_000) == [1_000]
    for bad in (999, 1_050):
        with pytest.raises(ValueError):
            growth_steps(bad)


def _server(database: str, workers: int, update: float, listing: float) -> dict[str, Any]:
    summary = [{"scenario": "bare endpoint", "throughput_rps": 1000.0, "ratio_to_bare": None},
               {"scenario": "UpdateRecords (10 patches)", "throughput_rps": update,
                "ratio_to_bare": update / 1000},
               {"scenario": "ListRecords (100 records)", "throughput_rps": listing,
                "ratio_to_bare": listing / 1000}]
    half = [{"scenario": "UpdateRecords (10 patches)", "p99_ms": 21.0}] if workers == 1 else []
    return {"database": database, "workers": workers, "summary": summary, "half_peak": half}


def test_verdicts_judge_ratios_of_the_same_run() -> None:
    step = {"update": {"p50_ms": 1.0, "p99_ms": 2.0}, "list": {"p50_ms": 1.0, "p99_ms": 2.0}}
    results = {
        "servers": [_server("sqlite", 1, 399.0, 500.0), _server("sqlite", 2, 800.0, 500.0)],
        "moto": {"phases": [{"scenario": "moto TransactWriteItems", "throughput_rps": 40.0},
                            {"scenario": "moto Query", "throughput_rps": 10.0}]},
        "growth": {"database": "sqlite", "steps": [
            {"records": 1000, "rss_mib": 100.0, **step},
            {"records": 1_000_000, "rss_mib": 126.0,
             "update": {"p50_ms": 1.5, "p99_ms": 9.0}, "list": {"p50_ms": 1.6, "p99_ms": 2.0}},
        ]},
    }
    got = {c["what"]: (c["value"], c["met"]) for c in comparisons(results)}
    assert got["UpdateRecords (10 patches) / bare endpoint, sqlite"] == (0.399, False)
    assert got["ListRecords (100 records) / bare endpoint, sqlite"] == (0.5, True)
    assert got["UpdateRecords / moto TransactWriteItems, sqlite"] == (9.975, False)
    assert got["UpdateRecords (10 patches) p99 at half of peak, sqlite"] == (21.0, False)
    assert got["UpdateRecords (10 patches): 2 workers / 1 worker, sqlite"] == (2.005, None)
    span = "1,000,000 / 1,000 records, sqlite"
    assert got[f"UpdateRecords p50 latency at {span}"] == (1.5, True)
    assert got[f"ListRecords p50 latency at {span}"] == (1.6, False)
    assert got[f"UpdateRecords p99 latency at {span}"] == (4.5, None)
    assert got[f"server memory (RSS) at {span}"] == (1.26, False)


@pytest.mark.skipif(backend() != "postgresql", reason="needs the test PostgreSQL")
def test_postgres_schema_dropped_even_when_the_benchmark_fails() -> None:
    import psycopg

    from benchmarks.postgres import POSTGRES_URL, fresh_schema

    with pytest.raises(RuntimeError), fresh_schema() as url:
        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(POSTGRES_URL) as conn:
            assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (schema,)).fetchone()
        raise RuntimeError("the benchmark failed")
    with psycopg.connect(POSTGRES_URL) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (schema,)).fetchone() is None


def test_round_trips_from_strace_lines() -> None:
    """Per connection to PostgreSQL: a run of sends answered by a receive is one round trip
    (pipelined statements count once); reads that find nothing yet, receives nobody asked
    for (notifications), other descriptors and other processes do not count."""
    lines = [
        "100 sendto(7, \"\"..., 40, MSG_NOSIGNAL, NULL, 0) = 40",
        "100 sendto(7, \"\"..., 60, MSG_NOSIGNAL, NULL, 0) = 60",  # pipelined
        "100 recvfrom(7, 0x7f, 16384, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily "
        "unavailable)",
        "100 recvfrom(7,  <unfinished ...>",
        "101 write(9, \"\"..., 200) = 200",  # the HTTP answer: not a database socket
        "100 <... recvfrom resumed>\"\"..., 16384, 0, NULL, NULL) = 120",  # trip 1
        "100 recvfrom(7, \"\"..., 16384, 0, NULL, NULL) = 20",  # more of the same answer
        "102 recvfrom(8, \"\"..., 16384, 0, NULL, NULL) = 90",  # a NOTIFY on LISTEN
        "101 sendto(7, \"\"..., 30, MSG_NOSIGNAL, NULL, 0) = 30",  # another thread
        "101 recvfrom(7, \"\"..., 16384, 0, NULL, NULL) = 15",  # trip 2
        "300 sendto(7, \"\"..., 30, MSG_NOSIGNAL, NULL, 0) = 30",  # another process's fd 7
        "300 recvfrom(7, \"\"..., 16384, 0, NULL, NULL) = 15",
    ]
    owners = {100: 100, 101: 100, 102: 100, 300: 300}
    traffic = parse(lines, {100: {7, 8}}, owners)
    assert (traffic.round_trips, traffic.sends, traffic.receives) == (2, 3, 5)


def _cost_results(anchor: list[float], update: list[float],
                  backends: list[float] | None = None) -> dict[str, Any]:
    phases = []
    for n, (a, u) in enumerate(zip(anchor, update, strict=True), 1):
        phases.append({"round": n, "operation": "anchor", "server_cpu_us": a,
                       "throughput_rps": 1e6 / a})
        row = {"round": n, "operation": "update", "server_cpu_us": u, "throughput_rps": 1e6 / u}
        if backends is not None:
            row.update(db_backend_cpu_us=backends[n - 1], db_cluster_cpu_us=None,
                       db_statements_per_request=None)
        phases.append(row)
    database = "sqlite" if backends is None else "postgresql"
    return {"name": database, "database": database, "replicas": 1, "workers": 1,
            "phases": phases, "round_trips": None}


def test_cost_ratios_are_per_round_and_verdicts_follow_the_targets() -> None:
    """Each round's cost is set beside the anchor measured right before it, and the
    median of those ratios is judged; PostgreSQL's CPU is server plus backends, over
    SQLite's server."""
    sqlite = _cost_results([50.0, 100.0, 60.0], [200.0, 500.0, 240.0])
    postgres = _cost_results([50.0, 50.0, 50.0], [300.0, 320.0, 310.0], [10.0, 20.0, 30.0])
    anchor_count = {"anchor": {"instructions_per_request": 200_000}}
    results: dict[str, Any] = {
        "servers": [sqlite, postgres],
        "instructions": {"anchor": anchor_count,
                         "sqlite": {"update": {"instructions_per_request": 790_000}}},
    }
    results["summary"] = summarize(results)
    add_instruction_ratios(results["instructions"])
    row = next(r for r in results["summary"] if r["server"] == "sqlite"
               and r["operation"] == "update")
    assert row["anchor_over_this_cpu"] == {"median": 0.25, "min": 0.2, "max": 0.25}
    assert row["server_cpu_us"] == {"median": 240.0, "min": 200.0, "max": 500.0}
    assert results["instructions"]["sqlite"]["update"]["anchor_over_this"] == pytest.approx(
        200 / 790, abs=1e-4)
    got = {v["what"]: (v["value"], v["met"]) for v in verdicts(results)}
    assert got["UpdateRecords (10 patches): anchor / this, instructions, sqlite"] == (
        pytest.approx(0.253, abs=1e-3), True)
    assert got["UpdateRecords (10 patches): anchor / this, server CPU, sqlite"] == (0.25, True)
    # median of 300 + 10, 320 + 20, 310 + 30 over SQLite's median: 340 / 240 > 1.3
    assert got["UpdateRecords (10 patches): PostgreSQL (server + backends) / SQLite, CPU per "
               "request"] == (pytest.approx(340 / 240, abs=1e-3), False)
    assert got["UpdateRecords (10 patches): PostgreSQL backend CPU per request"] == (0.02, True)
