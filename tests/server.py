"""Starting real cogsync servers for tests: a subprocess on a free port, driven by boto3."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config

REGION = "us-east-1"
_ENDPOINT = re.compile(r"Amazon Cognito Sync at (http://\S+)")
_KEY = re.compile(r"AWS_ACCESS_KEY_ID=(\S+)")
_SECRET = re.compile(r"AWS_SECRET_ACCESS_KEY=(\S+)")
_POOL = re.compile(r"IdentityPoolId=(\S+)")


POSTGRES_URL = os.environ.get("COGSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "cogsync_test_"


def backend() -> str:
    """``COGSYNC_TEST_BACKEND=postgresql`` runs every server of the suite on PostgreSQL."""
    return os.environ.get("COGSYNC_TEST_BACKEND", "sqlite")


# For test modules that use no test server and no backend of their own choosing (pure
# functions, or SQLite by design): the suite runs once per backend, they need run once.
independent_of_backend = pytest.mark.skipif(
    backend() != "sqlite", reason="does not use the test backend: runs in the SQLite pass"
)


CREATED_SCHEMAS: set[str] = set()


def postgres_database_for(data_dir: Path) -> str:
    """A schema of its own per data folder, so a restarted server finds its data again."""
    schema = SCHEMA_PREFIX + uuid.uuid5(uuid.NAMESPACE_URL, str(data_dir.resolve())).hex[:16]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    CREATED_SCHEMAS.add(schema)
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def drop_test_schemas() -> None:
    """Drops the schemas this run made (and no one else's: runs may overlap)."""
    if not CREATED_SCHEMAS:
        return
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for schema in sorted(CREATED_SCHEMAS):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    CREATED_SCHEMAS.clear()


def new_identity_id() -> str:
    return f"{REGION}:{uuid.uuid4()}"


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str


@dataclass
class ServerProcess:
    """One ``cogsync serve`` process; restartable on the same data folder."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""
    credentials: Credentials | None = None
    pool_id: str = ""
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    database: str | None = None

    def __post_init__(self) -> None:
        if self.database is None and backend() == "postgresql":
            self.database = postgres_database_for(self.data_dir)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "cogsync", "serve", "--port", "0",
               "--data-dir", str(self.data_dir), "--log-level", "warning", *self.extra_args]
        if self.database:
            cmd += ["--database", self.database]
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,  # its own process group: kill() reaches any workers
        )
        ready = threading.Event()
        self.output = []

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if m := _ENDPOINT.search(line):
                    self.endpoint = m.group(1)
                if m := _KEY.search(line):
                    self.credentials = Credentials(m.group(1), "")
                if (m := _SECRET.search(line)) and self.credentials:
                    self.credentials.secret_access_key = m.group(1)
                if m := _POOL.search(line):
                    self.pool_id = m.group(1)
                if line.startswith("Ready."):
                    ready.set()
            ready.set()

        self.endpoint = ""
        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.endpoint or self.process.poll() is not None:
            self.kill()
            raise RuntimeError("cogsync did not start:\n" + "".join(self.output))
        return self

    def client(self, service: str = "cognito-sync", credentials: Credentials | None = None,
               **config: Any) -> Any:
        creds = credentials or self.credentials
        assert creds is not None, "this server printed no credentials"
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def cli(self, *args: str) -> str:
        """Runs a ``cogsync`` admin command against this server's data folder."""
        cmd = [sys.executable, "-m", "cogsync", *args, "--data-dir", str(self.data_dir)]
        if self.database:
            cmd += ["--database", self.database]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                env={**os.environ, **self.env})
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout

    def restart(self, extra_args: list[str] | None = None) -> ServerProcess:
        """Kill -9, then start again on the same data (credentials and pool stay known)."""
        self.kill()
        credentials, pool_id = self.credentials, self.pool_id
        if extra_args is not None:
            self.extra_args = extra_args
        self.start()
        self.credentials, self.pool_id = credentials, pool_id
        return self

    def kill(self) -> None:
        """kill -9: no shutdown hooks run."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
