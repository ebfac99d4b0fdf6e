"""``python -m benchmarks.all`` end to end with tiny phases and sizes, on the backend under
test: every part runs, counts its answers, computes its ratios and writes its files. No
timing is asserted, only that the measurements are real and complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.server import backend

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 0.3
SCENARIOS = ["bare endpoint", "UpdateRecords (10 patches)", "ListRecords (100 records)"]
# tests/test_benchmark_cost.py runs the cost part; moto does not use the backend, so it
# runs in the SQLite pass only.
SKIP = "cost" if backend() == "sqlite" else "cost,moto"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                            dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("bench-all")
    out, plot = folder / "results.json", folder / "plot.png"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.all", "--seconds", str(SECONDS), "--warmup", "0.1",
         "--concurrency", "4", "--databases", backend(), "--growth-database", backend(),
         "--growth-max", "2000", "--growth-seconds", str(SECONDS),
         "--skip", SKIP,
         "--json", str(out), "--plot", str(plot)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result, json.loads(out.read_text()), plot


def test_every_request_answered_and_every_check_passed(run: Any) -> None:
    result, report, _ = run
    assert report["request_errors"] == 0
    assert report["failed_checks"] == []
    assert "request errors: 0" in result.stdout
    assert "### Verdicts" in result.stdout


def test_one_and_two_workers_measured_against_their_own_bare_endpoint(run: Any) -> None:
    _, report, _ = run
    servers = report["servers"]
    assert [(s["database"], s["workers"]) for s in servers] == [(backend(), 1), (backend(), 2)]
    for server in servers:
        assert server["write_check"] == "ok"
        assert [s["scenario"] for s in server["summary"]] == SCENARIOS
        for phase in server["phases"]:
            assert phase["requests"] > 0 and phase["errors"] == 0, phase
        for s in server["summary"][1:]:
            assert 0 < s["ratio_to_bare"] < 10
    comparisons = {c["what"]: c for c in report["comparisons"]}
    for name in SCENARIOS:
        assert comparisons[f"{name}: 2 workers / 1 worker, {backend()}"]["value"] > 0


def test_half_peak_sent_at_half_the_measured_rate(run: Any) -> None:
    _, report, _ = run
    one = report["servers"][0]
    peaks = {s["scenario"]: s["throughput_rps"] for s in one["summary"]}
    assert [h["scenario"] for h in one["half_peak"]] == SCENARIOS[1:]
    for h in one["half_peak"]:
        assert h["target_rps"] == pytest.approx(peaks[h["scenario"]] / 2, rel=0.01)
        # an open loop sends on schedule whatever the answers do
        assert h["requests"] >= 0.7 * h["target_rps"] * SECONDS, h
        assert h["errors"] == 0
        assert 0 < h["p50_ms"] <= h["p90_ms"] <= h["p99_ms"] <= h["max_ms"]
    verdicts = {c["what"]: c for c in report["comparisons"]}
    p99 = verdicts[f"UpdateRecords (10 patches) p99 at half of peak, {backend()}"]
    if backend() == "sqlite":
        assert p99["met"] is (p99["value"] <= 20)
    else:
        assert p99["met"] is None  # the target is SQLite's


@pytest.mark.skipif(backend() != "sqlite", reason="moto does not use the backend: runs in the "
                    "SQLite pass")
def test_moto_answered_200_and_applied_every_transaction(run: Any) -> None:
    _, report, _ = run
    moto = report["moto"]
    assert moto["write_check"] == "ok"
    assert [p["scenario"].split()[1] for p in moto["phases"]] == ["TransactWriteItems", "Query"]
    for phase in moto["phases"]:
        assert phase["requests"] > 0 and phase["errors"] == 0, phase
    verdict = {c["what"]: c for c in report["comparisons"]}[
        f"UpdateRecords / moto TransactWriteItems, {backend()}"]
    ours = report["servers"][0]["summary"][1]["throughput_rps"]
    assert verdict["value"] == pytest.approx(ours / moto["phases"][0]["throughput_rps"],
                                             rel=0.01)
    assert verdict["met"] is (verdict["value"] >= 10)


def test_growth_steps_measured_with_memory(run: Any) -> None:
    _, report, _ = run
    growth = report["growth"]
    assert growth["database"] == backend()
    steps = growth["steps"]
    assert [(s["records"], s["identities"]) for s in steps] == [(1000, 10), (2000, 20)]
    for step in steps:
        assert step["rss_mib"] > 10
        for key in ("update", "list"):
            assert step[key]["requests"] > 0 and step[key]["errors"] == 0, step
            assert step[key]["p50_ms"] > 0
    assert (steps[0]["data_mib"] is None) == (backend() == "postgresql")
    verdicts = {c["what"]: c for c in report["comparisons"]}
    memory = verdicts[f"server memory (RSS) at 2,000 / 1,000 records, {backend()}"]
    assert memory["value"] == pytest.approx(steps[1]["rss_mib"] / steps[0]["rss_mib"],
                                            abs=0.01)


def test_plot_written(run: Any) -> None:
    _, _, plot = run
    data = plot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
