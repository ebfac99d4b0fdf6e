"""What PostgreSQL spends for the servers under test, from /proc and its own views.

- The backends serving a server: each TCP connection that a process of the server's tree
  holds to PostgreSQL's port has a local port, which PostgreSQL reports as the
  ``client_port`` of its backend in ``pg_stat_activity``. That finds them whatever the
  server's driver, pool or settings (no application_name needed), and leaves out every
  other client of a shared PostgreSQL. Their CPU is utime + stime from /proc (a backend
  is one process): read when a phase starts and when it ends; a backend that appears in
  between counts from zero (its connection set-up included), one that disappears is
  counted as lost (its CPU since the start cannot be read).
- The whole cluster (a private one only): the postmaster's own CPU, the CPU of the
  children it has reaped (cutime + cstime: autovacuum workers, backends that ended) and
  that of its live children (backends, WAL writer, checkpointer, background writer...).
- Statements: the sum of ``calls`` in pg_stat_statements for the servers' database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from benchmarks.pg_cluster import Cluster
from benchmarks.procs import (
    process_cpu_seconds,
    reaped_children_cpu_seconds,
    tcp_connections,
    tree_pids,
)


def database_sockets(server_pids: Sequence[int], pg_port: int) -> dict[int, set[int]]:
    """Per process of the servers' trees: the file descriptors of its connections to
    PostgreSQL, with their local ports as values' keys (pid -> {fd, ...})."""
    found: dict[int, set[int]] = {}
    for root in server_pids:
        for pid in tree_pids(root):
            fds = {fd for fd, _, remote in tcp_connections(pid) if remote == pg_port}
            if fds:
                found[pid] = fds
    return found


def client_ports(server_pids: Sequence[int], pg_port: int) -> list[int]:
    return sorted({local for root in server_pids for pid in tree_pids(root)
                   for _, local, remote in tcp_connections(pid) if remote == pg_port})


def cluster_cpu_seconds(postmaster_pid: int) -> float:
    """CPU used so far by a cluster: the postmaster, its reaped and its live children."""
    children = [pid for pid in tree_pids(postmaster_pid) if pid != postmaster_pid]
    return (process_cpu_seconds(postmaster_pid) + reaped_children_cpu_seconds(postmaster_pid)
            + sum(process_cpu_seconds(pid) for pid in children))


@dataclass
class Snapshot:
    backends: dict[int, float]  # backend pid -> its CPU seconds so far
    cluster: float | None
    statements: int | None


@dataclass
class DatabaseCost:
    """What PostgreSQL spent during one phase."""

    backend_cpu: float  # seconds, the backends serving the servers
    backends: int  # how many served them at some point of the phase
    lost_backends: int  # ended during the phase: their CPU since the start is missing
    cluster_cpu: float | None  # seconds, the whole private cluster
    statements: int | None  # executed in the servers' database (pg_stat_statements)


@dataclass
class PostgresProbe:
    """Watches one cluster for the servers whose process trees start at ``server_pids``."""

    cluster: Cluster
    server_pids: list[int] = field(default_factory=list)
    _conn: Any = None

    @property
    def port(self) -> int:
        return urlparse(self.cluster.url).port or 5432

    def __enter__(self) -> PostgresProbe:
        import psycopg

        self._conn = psycopg.connect(self.cluster.monitor_url, autocommit=True)
        return self

    def __exit__(self, *_: object) -> None:
        self._conn.close()

    def _backends(self) -> dict[int, float]:
        ports = client_ports(self.server_pids, self.port)
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)"
            " AND client_addr IS NOT NULL AND pid <> pg_backend_pid()", (ports,)).fetchall()
        return {pid: process_cpu_seconds(pid) for (pid,) in rows}

    def _statements(self) -> int | None:
        if not self.cluster.private:
            return None
        database = urlparse(self.cluster.url).path.lstrip("/")
        row = self._conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d"
            " ON d.oid = s.dbid WHERE d.datname = %s", (database,)).fetchone()
        return int(row[0])

    def snapshot(self) -> Snapshot:
        pid = self.cluster.postmaster_pid
        return Snapshot(self._backends(), cluster_cpu_seconds(pid) if pid else None,
                        self._statements())

    def since(self, start: Snapshot) -> DatabaseCost:
        end = self.snapshot()
        backend_cpu = sum(cpu - start.backends.get(pid, 0.0) for pid, cpu in end.backends.items())
        lost = len(set(start.backends) - set(end.backends))
        cluster = (end.cluster - start.cluster
                   if end.cluster is not None and start.cluster is not None else None)
        statements = (end.statements - start.statements
                      if end.statements is not None and start.statements is not None else None)
        return DatabaseCost(backend_cpu, len(set(start.backends) | set(end.backends)), lost,
                            cluster, statements)
