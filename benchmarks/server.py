"""Starts the ``cogsync serve`` under test and reads what it prints on a new database."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

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
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if m := _ENDPOINT.search(line):
                    self.endpoint = m.group(1)
                if m := _KEY.search(line):
                    self.access_key_id = m.group(1)
                if m := _SECRET.search(line):
                    self.secret_access_key = m.group(1)
                if m := _POOL.search(line):
                    self.pool_id = m.group(1)
                if line.startswith("  aws cognito-sync") or line.startswith("Get a developer"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(timeout)
        if not (self.endpoint and self.access_key_id and self.secret_access_key
                and self.pool_id) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("cogsync did not start as expected:\n" + "".join(self.output))
        return self

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL to what is left of its process group."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # a worker its supervisor left behind
            os.killpg(self.process.pid, signal.SIGKILL)
