"""CPU time and resident memory of a server process and its descendants, from /proc.

``cogsync serve --workers N`` (N > 1) is a supervisor whose worker processes serve the
requests, so what the server costs is the sum over its process tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads); 0.0 where unavailable."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants."""
    return sum(process_cpu_seconds(p) for p in tree_pids(pid))


def rss_bytes(pid: int) -> int:
    """VmRSS of one process; 0 where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants, summed (shared pages count
    once per process, so for several workers this overstates a little)."""
    return sum(rss_bytes(p) for p in tree_pids(pid))


def stop_group(process: subprocess.Popen[str], grace: float = 15.0) -> None:
    """SIGTERM to a server started in a session of its own (a clean shutdown), SIGKILL to
    its process group if it is not done within ``grace`` seconds, then to whatever of the
    group is left (a worker its supervisor left behind)."""
    if process.poll() is None and grace > 0:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def launch(cmd: list[str], env: dict[str, str], watch: Callable[[str], bool],
           timeout: float) -> subprocess.Popen[str]:
    """Starts a server in a session of its own (its process group holds any workers) and
    hands each line it prints to ``watch`` on a thread; returns once ``watch`` said it is
    ready, the server ended, or ``timeout`` passed."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, start_new_session=True)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if watch(line):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    ready.wait(timeout)
    return process


def reaped_children_cpu_seconds(pid: int) -> float:
    """cutime + cstime: the CPU of the children that ``pid`` has waited for."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / _CLOCK_TICKS


def _tcp_table() -> dict[int, tuple[int, int]]:
    """Socket inode -> (local port, remote port) of every TCP socket of this host's
    network namespace, IPv4 and IPv6."""
    table = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return table


def tcp_connections(pid: int) -> list[tuple[int, int, int]]:
    """(file descriptor, local port, remote port) of each TCP socket that ``pid`` holds
    open (listening sockets have remote port 0)."""
    table = _tcp_table()
    found = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and (ports := table.get(int(target[8:-1]))):
            found.append((int(fd.name), *ports))
    return found


class Served:
    """What a benchmark's server processes share (fields ``wrapper``, ``output`` and
    ``process`` of the dataclasses that use it): start under an optional wrapper, stop."""

    wrapper: list[str]
    output: list[str]
    process: subprocess.Popen[str] | None

    def launch(self, cmd: list[str], env: dict[str, str], watch: Callable[[str], bool],
               started: Callable[[], bool], what: str, timeout: float | None) -> None:
        """Starts ``cmd`` (after the wrapper) and waits until ``watch`` saw its ready line
        (a minute at most; ten under a wrapper such as valgrind, which starts Python tens
        of times slower); ``started`` then says whether it printed all it must."""
        timeout = timeout or (600.0 if self.wrapper else 60.0)
        self.process = launch([*self.wrapper, *cmd], env, watch, timeout)
        if not started() or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{what} did not start as expected:\n" + "".join(self.output))

    def stop(self) -> None:
        """A clean shutdown; under a wrapper (valgrind, a slowed clock, where a clean
        shutdown waits for timers that practically never fire) killed at once."""
        if self.process is not None:
            stop_group(self.process, 0.0 if self.wrapper else 15.0)
