"""Shared by the import, export and restore tests: the generated pool (in
benchmarks/generated_pool.py), the commands run as subprocesses or in this process, and
exports read back as lines."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server import ServerProcess


def cogsync(*args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m cogsync ARGS`` (its exit status is the caller's to check)."""
    return subprocess.run([sys.executable, "-m", "cogsync", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def cogsync_here(*args: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """``cogsync ARGS`` run in this process (``cogsync.cli.main``, output captured): the
    same command without an interpreter's start-up, for the many short runs of a test."""
    from cogsync.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(args))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


def target_args(server: ServerProcess) -> list[str]:
    """The --data-dir (and --database) of a server, for the admin commands."""
    args = ["--data-dir", str(server.data_dir)]
    return args + ["--database", server.database] if server.database else args


def source_env(server: ServerProcess) -> dict[str, str]:
    assert server.credentials is not None
    return {"AWS_ACCESS_KEY_ID": server.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.credentials.secret_access_key}


def read_lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines()]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Checks the command failed the way the command line must: exit status 2, one line
    on standard error, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("cogsync: ")
    return lines[0]
