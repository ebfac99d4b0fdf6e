"""``python -m benchmarks.cost`` end to end with tiny phases on the backend under test: the
anchor counted under callgrind (SQLite pass), CPU per request beside the anchor of the same
round, and on PostgreSQL its backends' CPU, statements, round trips and two replicas. No
timing is asserted, only that the figures are real, complete and computed from the run."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import callgrind
from benchmarks.all import parse as parse_all
from benchmarks.cost_report import ANCHOR_TARGETS, BACKEND_UPDATE_TARGET_MS
from benchmarks.slow_clock import faketime_library
from tests.server import backend

ROOT = Path(__file__).resolve().parent.parent
COUNT_ANCHOR = backend() == "sqlite" and callgrind.available()
OPERATIONS = ["anchor", "bare", "update", "list", "describe", "datasets"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    folder = tmp_path_factory.mktemp("bench-cost")
    out, markdown = folder / "cost.json", folder / "cost.md"
    command = [sys.executable, "-m", "benchmarks.cost", "--databases", backend(),
               "--seconds", "0.2", "--warmup", "0", "--rounds", "1", "--concurrency", "4",
               "--requests", "3", "--warm-requests", "16", "--trip-requests", "10",
               "--idle-seconds", "0.5", "--replicas", "2",
               "--instructions", "anchor" if COUNT_ANCHOR else "none",
               "--json", str(out), "--markdown", str(markdown)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(out.read_text()), markdown.read_text()


def test_every_request_answered_and_every_check_passed(run: Any) -> None:
    report, markdown = run
    assert report["request_errors"] == 0
    assert report["failed_checks"] == []
    assert "### CPU per request and throughput" in markdown
    assert "### Verdicts" in markdown


@pytest.mark.skipif(not COUNT_ANCHOR, reason="valgrind is not installed" if backend() == "sqlite"
                    else "counted in the SQLite pass: the anchor does not use the backend")
def test_anchor_counted_under_callgrind_within_a_broad_range(run: Any) -> None:
    report, markdown = run
    count = report["instructions"]["anchor"]["anchor"]
    # a bare Starlette GET on uvicorn: about 200,000 on the machines measured so far
    assert 50_000 < count["instructions_per_request"] < 2_000_000, count
    assert 0 < count["count_n"] < count["count_2n"]
    if faketime_library():
        assert report["callgrind_clock"].startswith("slowed")
        assert count["idle_share"] < 0.05, count  # its clock practically stopped
    assert "### Instructions per request" in markdown


def test_cpu_per_request_beside_the_anchor_of_the_same_round(run: Any) -> None:
    report, _ = run
    names = [s["name"] for s in report["servers"]]
    assert names == ([backend()] if backend() == "sqlite"
                     else ["postgresql", "postgresql, 2 replicas"])
    for server in report["servers"]:
        phases = server["phases"]
        assert [p["operation"] for p in phases] == OPERATIONS
        assert server["write_check"] == "ok"
        for phase in phases:
            assert phase["requests"] > 0 and phase["errors"] == 0, phase
            assert phase["server_cpu_us"] > 0, phase
        anchors = {p["round"]: p["server_cpu_us"] for p in phases if p["operation"] == "anchor"}
        rows = {r["operation"]: r for r in report["summary"] if r["server"] == server["name"]}
        for operation in OPERATIONS:
            mine = [p for p in phases if p["operation"] == operation]
            expected = statistics.median(anchors[p["round"]] / p["server_cpu_us"] for p in mine)
            ratio = rows[operation]["anchor_over_this_cpu"]
            assert ratio["median"] == pytest.approx(expected, abs=0.001)
            assert ratio["min"] <= ratio["median"] <= ratio["max"]
        assert server["idle"]["server_cpu_ms_per_second"] >= 0


def test_verdicts_are_the_targets_applied_to_the_run(run: Any) -> None:
    report, _ = run
    verdicts = {v["what"]: v for v in report["verdicts"]}
    rows = {(r["server"], r["operation"]): r for r in report["summary"]}
    if backend() == "sqlite":
        for operation, name in (("update", "UpdateRecords (10 patches)"),
                                ("list", "ListRecords (100 records)")):
            v = verdicts[f"{name}: anchor / this, server CPU, sqlite"]
            assert v["value"] == pytest.approx(
                rows["sqlite", operation]["anchor_over_this_cpu"]["median"], abs=0.001)
            assert v["met"] is (v["value"] >= ANCHOR_TARGETS[operation])
    else:
        v = verdicts["UpdateRecords (10 patches): PostgreSQL backend CPU per request"]
        assert v["value"] == pytest.approx(
            rows["postgresql", "update"]["db_backend_cpu_us"]["median"] / 1000, abs=0.001)
        assert v["met"] is (v["value"] <= BACKEND_UPDATE_TARGET_MS)
        assert "UpdateRecords (10 patches): 2 replicas / 1, CPU per request (server + "\
            "backends)" in verdicts


@pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL's costs")
def test_postgres_backends_statements_and_round_trips(run: Any) -> None:
    report, _ = run
    assert report["postgres"].startswith("private cluster")
    one, two = report["servers"]
    for server, replicas in ((one, 1), (two, 2)):
        update = [p for p in server["phases"] if p["operation"] == "update"]
        for phase in update:
            assert phase["db_backend_cpu_us"] > 0, phase
            assert phase["db_backends"] >= replicas and phase["db_lost_backends"] == 0
            assert phase["db_statements_per_request"] >= 1
            # the cluster holds the backends (/proc counts in 10 ms ticks: some slack)
            assert phase["db_cluster_cpu_us"] >= 0.8 * phase["db_backend_cpu_us"], phase
    trips = one["round_trips"]
    assert trips["bare"]["round_trips"] < 0.5
    for operation in ("update", "list", "describe", "datasets"):
        assert trips[operation]["round_trips"] >= 0.5, trips
        assert trips[operation]["sends"] >= trips[operation]["round_trips"] - 0.5
        assert trips[operation]["statements"] >= 0.5
    assert two["round_trips"] is None


def test_benchmarks_all_takes_the_cost_options() -> None:
    args = parse_all(["--cost-rounds", "2", "--cost-requests", "7", "--cost-seconds", "0.5",
                      "--databases", "sqlite"])
    assert (args.cost.rounds, args.cost.requests, args.cost.seconds) == (2, 7, 0.5)
    assert args.cost.instructions == ["anchor", "sqlite"]
    with pytest.raises(SystemExit):
        parse_all(["--cost-instructions", "mysql"])
