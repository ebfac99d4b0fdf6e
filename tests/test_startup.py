"""What a start of the server loads, and the start-up benchmark end to end.

Timing is the benchmark's business (python -m benchmarks.startup; docs/performance.md):
here, what a start must not import, which is what keeps it cheap, and that the benchmark
runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.server import independent_of_backend

pytestmark = independent_of_backend
ROOT = Path(__file__).resolve().parent.parent

# Built as `cogsync serve` builds it, on a new database (SQLite).
START = """
import sys, tempfile
from cogsync.accounts import bootstrap
from cogsync.app import CogsyncApp
from cogsync.http.server import HttpServer
from cogsync.components import build_components
from cogsync.config import load_settings
settings = load_settings({"data_dir": tempfile.mkdtemp(), "test_controls": True})
components = build_components(settings)
bootstrap(components.store, components.keyring, settings.region)
HttpServer(CogsyncApp(components), settings.http)
print(sorted(name for name in sys.modules if name.split(".")[0] in NOT_AT_START
             or name.startswith("sqlalchemy.dialects.postgresql")))
"""
# Each is loaded when first needed: Alembic when a database must migrate, boto3 for the
# first Sync Trigger call or stream or push delivery, the PostgreSQL dialect on PostgreSQL,
# moto never; websockets are not served; uvicorn is no longer the server.
NOT_AT_START = ("alembic", "mako", "boto3", "botocore", "moto", "psycopg", "websockets",
                "redis", "nats", "uvicorn")


def test_a_start_loads_only_what_it_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
    done = subprocess.run(
        [sys.executable, "-c", f"NOT_AT_START = {NOT_AT_START!r}\n{START}"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_startup_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", "--starts", "1", "--traced", "1",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    [entry] = report["sources"]
    assert set(entry["modes"]) == {"new data folder", "restart", "--ephemeral --print-json"}
    for figures in entry["modes"].values():
        assert 0 < figures["cpu_to_ready"] <= figures["cpu_total"]
        assert figures["wall_to_ready"] > 0
    assert entry["modules_imported"] > 100
    assert "sqlalchemy" in dict(entry["imports"])
    assert "CPU to ready" in done.stdout
