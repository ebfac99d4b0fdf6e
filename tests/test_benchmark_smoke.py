"""The benchmark runs end to end: a correctness check with tiny phases, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.server import independent_of_backend

pytestmark = independent_of_backend  # benchmarks.run measures a SQLite server
ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("bare endpoint", "UpdateRecords (10 patches)", "ListRecords (100 records)")


def test_benchmark_runs_with_zero_request_errors(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--seconds", "0.3", "--warmup", "0.1",
         "--concurrency", "4", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in SCENARIOS:
        assert name in result.stdout
    assert "request errors: 0" in result.stdout
    assert "write check: every acknowledged UpdateRecords applied exactly once" in result.stdout

    report = json.loads(out.read_text())
    assert report["request_errors"] == 0
    assert report["write_check"] == "ok"
    assert report["client_ceiling"]["requests"] > 0
    phases = report["phases"]
    assert [p["scenario"] for p in phases] == [
        "bare endpoint", "UpdateRecords (10 patches)", "bare endpoint", "ListRecords (100 records)"
    ]
    for phase in phases:
        assert phase["errors"] == 0, phase
        assert phase["requests"] > 0, phase
        assert phase["p50_ms"] <= phase["p90_ms"] <= phase["p99_ms"]
    for scenario in report["summary"][1:]:
        assert scenario["ratio_to_bare"] is not None and scenario["ratio_to_bare"] > 0
        assert scenario["met"] in (True, False)
    assert report["machine"]["nproc"] >= 1
