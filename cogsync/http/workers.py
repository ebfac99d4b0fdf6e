"""Several worker processes on one listening socket, under a small supervisor.

The supervisor binds the socket, starts N workers that inherit it (the kernel spreads
the connections), restarts a worker that dies, and on SIGTERM or SIGINT passes SIGTERM
on and waits for every worker's graceful stop. Each worker is
``python -m cogsync.http.workers``: it builds the application from an import path
(``module:function``, called once) and serves it with the limits it is handed.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

from cogsync.config import HttpLimits
from cogsync.logs import configure_logging, level_number

log = logging.getLogger("cogsync.http")

FD_VARIABLE = "COGSYNC_WORKER_FD"
SUPERVISOR_VARIABLE = "COGSYNC_WORKER_SUPERVISOR"
FACTORY_VARIABLE = "COGSYNC_WORKER_FACTORY"
HTTP_VARIABLE = "COGSYNC_WORKER_HTTP"
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode
RESTART_PAUSE = 1.0  # seconds before a dead worker is replaced


def supervise(sock: socket.socket, workers: int, factory: str, limits: HttpLimits, *,
              log_level: str, log_format: str = "text") -> int:
    """Runs ``workers`` processes until SIGTERM or SIGINT; returns the exit status.

    The workers' metrics live in files of a directory of this server's own, new at the
    start (values of an earlier run must not be added in) and removed at the stop."""
    metrics_dir = tempfile.mkdtemp(prefix="cogsync-metrics-")
    try:
        return _supervise(sock, workers, factory, limits, metrics_dir,
                          {"log_level": log_level, "log_format": log_format})
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(sock: socket.socket, workers: int, factory: str, limits: HttpLimits,
               metrics_dir: str, logs: dict[str, str]) -> int:
    env = {
        **os.environ,
        FD_VARIABLE: str(sock.fileno()),
        SUPERVISOR_VARIABLE: str(os.getpid()),
        FACTORY_VARIABLE: factory,
        HTTP_VARIABLE: json.dumps({**asdict(limits), **logs}),
        METRICS_VARIABLE: metrics_dir,
    }
    command = [sys.executable, "-m", "cogsync.http.workers"]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),))

    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = [spawn() for _ in range(workers)]
    while not stopping:
        time.sleep(0.2)
        for n, proc in enumerate(procs):
            if proc.poll() is not None and not stopping:
                log.error("worker %d exited with status %s; starting another", proc.pid,
                          proc.returncode)
                _forget_worker_gauges(metrics_dir, proc.pid)
                time.sleep(RESTART_PAUSE)
                procs[n] = spawn()
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + limits.graceful_timeout + 10
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    sock.close()
    return 0


def _forget_worker_gauges(metrics_dir: str, pid: int) -> None:
    """A dead worker's gauges (its open connections) no longer count; its counters do."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)


def _die_with_parent(supervisor: int) -> None:
    """A worker must not outlive its supervisor, even one killed with -9: on Linux the
    kernel sends SIGTERM when the parent goes. Asked first thing, then checked: a
    supervisor that died before the asking is no longer the parent."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:
        sys.exit(0)


def _worker() -> None:
    _die_with_parent(int(os.environ[SUPERVISOR_VARIABLE]))
    from cogsync.http.server import run, serve

    options = json.loads(os.environ[HTTP_VARIABLE])
    level = options.pop("log_level")
    configure_logging(level, options.pop("log_format"))
    logging.getLogger("cogsync.http").setLevel(level_number(level))
    limits = HttpLimits(**options)
    module, _, function = os.environ[FACTORY_VARIABLE].partition(":")
    app = getattr(importlib.import_module(module), function)()
    sock = socket.socket(fileno=int(os.environ[FD_VARIABLE]))
    run(serve(app, sock, limits, graceful_timeout=limits.graceful_timeout))


if __name__ == "__main__":
    _worker()
