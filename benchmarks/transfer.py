"""Import, export and restore at scale, measured in one run.

    python -m benchmarks.transfer [--identities 5000] [--database sqlite|postgresql]
                                  [--concurrency 8] [--json FILE]

A source server holds a generated pool (restored into its database: every identity has a
dataset, every seventh two, every third a developer login, every fifth a tombstone);
``cogsync import`` copies it over the wire into a second database; that database is
exported, the export restored into a third, and exported again (the two files must be
equal, else the run fails). Reported: the import's identities and requests per second,
its own CPU per source request beside the source server's (a ratio within the run: how
much of the cost is the importer's), and rows per second of export and restore.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.generated_pool import write_generated_pool
from benchmarks.postgres import fresh_schema
from benchmarks.procs import tree_cpu_seconds
from benchmarks.server import BenchServer


def _cogsync(*args: str, env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Runs a command; (its stdout, wall seconds, CPU seconds of the command)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cogsync", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"cogsync {args[0]} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, wall, cpu


def _where(folder: Path, url: str | None) -> list[str]:
    return ["--data-dir", str(folder)] + (["--database", url] if url else [])


def measure(identities: int, database: str, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cogsync-transfer-") as tmp, ExitStack() as stack:
        root = Path(tmp)

        def url() -> str | None:
            return stack.enter_context(fresh_schema()) if database == "postgresql" else None

        source = BenchServer(root / "source", database=url()).start()
        stack.callback(source.stop)
        source_db = _where(source.data_dir, source.database)
        account = json.loads(_cogsync("accounts", "create", "--json", *source_db)[0])
        generated = write_generated_pool(root / "pool.jsonl", account["AccountId"], identities)
        _cogsync("restore", str(root / "pool.jsonl"), *source_db)
        target = _where(root / "target", url())
        _cogsync("accounts", "create", "--init", *target)

        server_before = tree_cpu_seconds(source.pid)
        out, wall, cpu = _cogsync(
            "import", "--from", source.endpoint, "--pool", generated.pool_id, "--json",
            "--no-progress", "--concurrency", str(concurrency), *target,
            env={"AWS_ACCESS_KEY_ID": account["AccessKeyId"],
                 "AWS_SECRET_ACCESS_KEY": account["SecretAccessKey"]})
        server_cpu = tree_cpu_seconds(source.pid) - server_before
        report = json.loads(out)
        requests = report["requests"]

        key = {"COGSYNC_SECRET_KEY": (root / "target" / "master.key").read_text().strip()}
        _, export_wall, _ = _cogsync("export", str(root / "a.jsonl"), *target, env=key)
        rows = sum(1 for _ in (root / "a.jsonl").open()) - 2  # no header, no end line
        copy = _where(root / "copy", url())
        _, restore_wall, _ = _cogsync("restore", str(root / "a.jsonl"), *copy, env=key)
        _cogsync("export", str(root / "b.jsonl"), *copy, env=key)
        if (root / "a.jsonl").read_bytes() != (root / "b.jsonl").read_bytes():
            raise RuntimeError("export, restore, export gave another file")
        return {
            "database": database,
            "identities": identities,
            "records": generated.records,
            "concurrency": concurrency,
            "import": {
                "seconds": round(wall, 2),
                "identities_per_second": round(identities / wall, 1),
                "requests": requests,
                "requests_per_second": round(requests / wall, 1),
                "importer_cpu_ms_per_request": round(1000 * cpu / requests, 3),
                "source_cpu_ms_per_request": round(1000 * server_cpu / requests, 3),
                "importer_to_source_cpu": round(cpu / server_cpu, 2) if server_cpu else None,
                "throttled": report["throttled"],
            },
            "export": {"rows": rows, "seconds": round(export_wall, 2),
                       "rows_per_second": round(rows / export_wall, 1)},
            "restore": {"rows": rows, "seconds": round(restore_wall, 2),
                        "rows_per_second": round(rows / restore_wall, 1)},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transfer",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=5000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    results = measure(args.identities, args.database, args.concurrency)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
