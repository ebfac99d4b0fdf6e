"""Starts the ``cogsync serve`` under test and reads what it prints on a new database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.postgres import POSTGRES_URL, fresh_schema
from benchmarks.procs import launch, stop_group

_ENDPOINT = re.compile(r"Amazon Cognito Sync at (http://\S+)")
_KEY = re.compile(r"AWS_ACCESS_KEY_ID=(\S+)")
_SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=(\S+)")
_POOL = re.compile(r"IdentityPoolId=(\S+)")


@dataclass
class BenchServer:
    """One server process: ``workers`` uvicorn workers (default one), SQLite in
    ``data_dir`` or the PostgreSQL ``database`` URL, no rate limits."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    workers: int = 1
    database: str | None = None
    endpoint: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    pool_id: str = ""
    output: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def host(self) -> str:
        return urlparse(self.endpoint).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlparse(self.endpoint).port or 80

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> BenchServer:
        cmd = [sys.executable, "-m", "cogsync", "serve", "--port", "0",
               "--data-dir", str(self.data_dir), "--log-level", "warning",
               "--workers", str(self.workers), *self.extra_args]
        if self.database:
            cmd += ["--database", self.database]
        # The defaults are what is measured: no database URL, worker count, rate limit or
        # durability setting inherited from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}

        def watch(line: str) -> bool:
            self.output.append(line)
            if m := _ENDPOINT.search(line):
                self.endpoint = m.group(1)
            if m := _KEY.search(line):
                self.access_key_id = m.group(1)
            if m := _SECRET.search(line):
                self.secret_access_key = m.group(1)
            if m := _POOL.search(line):
                self.pool_id = m.group(1)
            return line.startswith("Ready.")

        self.process = launch(cmd, env, watch, timeout)
        if not (self.endpoint and self.access_key_id and self.secret_access_key
                and self.pool_id) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("cogsync did not start as expected:\n" + "".join(self.output))
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


@contextmanager
def running_server(database: str = "sqlite", workers: int = 1,
                   extra_args: list[str] | None = None,
                   postgres_url: str = POSTGRES_URL) -> Iterator[BenchServer]:
    """A new server on a new database: SQLite in a temporary folder, or a new schema in
    the PostgreSQL at ``postgres_url``. Stopped, and its data removed, on the way out."""
    if database not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown database {database!r}")
    with tempfile.TemporaryDirectory(prefix="cogsync-bench-") as folder, ExitStack() as stack:
        url = stack.enter_context(fresh_schema(postgres_url)) if database == "postgresql" else None
        server = BenchServer(Path(folder), list(extra_args or []), workers=workers,
                             database=url).start()
        try:
            yield server
        finally:
            server.stop()
