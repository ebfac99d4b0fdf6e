"""A private PostgreSQL cluster for one benchmark run, with pg_stat_statements loaded.

``benchmarks.cost`` measures what PostgreSQL spends per request. On a PostgreSQL that
other work shares, only the backends serving the measured servers can be told apart; in
a cluster of its own, the whole cluster's CPU (WAL writer, checkpointer, autovacuum
included) and the statements executed (pg_stat_statements, which needs
``shared_preload_libraries`` and so a cluster started for it) are the benchmark's alone.
The cluster is made with ``initdb`` in a temporary folder (as the ``postgres`` user when
run as root), listens on 127.0.0.1 on a free port with trust authentication, and is
stopped and removed afterwards. Nothing of the machine's own PostgreSQL is touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DATABASE = "bench"


@dataclass
class Cluster:
    """Where the servers' database is (``url``) and how to watch it: ``monitor_url`` is
    another database of the same cluster, so the probes' own statements do not count;
    ``postmaster_pid`` is known for a private cluster only."""

    url: str
    monitor_url: str
    postmaster_pid: int | None = None
    private: bool = False


def _bin_dir() -> Path:
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                               check=True).stdout.strip()
        if (Path(found) / "initdb").exists():
            return Path(found)
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    if not versions:
        raise RuntimeError("initdb not found: install PostgreSQL, or pass --postgres URL")
    return versions[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: then it runs as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    import psycopg

    binaries = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="cogsync-bench-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = _free_port()
    started = False
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8"])
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                   "-c shared_preload_libraries=pg_stat_statements")
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
              "-o", options, "start"])
        started = True
        base = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
            conn.execute("CREATE EXTENSION pg_stat_statements")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield Cluster(f"{base}/{DATABASE}", f"{base}/postgres", pid, private=True)
    finally:
        if started:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def shared_cluster(url: str) -> Iterator[Cluster]:
    """An existing PostgreSQL at ``url`` (the probes connect to the same database)."""
    yield Cluster(url, url)
