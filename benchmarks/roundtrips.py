"""Round trips to PostgreSQL per request, counted from the server's system calls.

For a short phase, ``strace -f`` is attached to every process of the server's tree (all
their threads) and records the socket calls; only those on the server's connections to
PostgreSQL count (found from /proc as in ``benchmarks.pg_probe``, at the start and the
end of the phase). On each connection, a round trip is a run of sends followed by a
receive that returns data: statements pipelined in one go count once, and a LISTEN
connection receiving notifications without having asked counts none. The number of
send calls is reported too (``sendto`` for libpq).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.pg_probe import database_sockets
from benchmarks.procs import tree_pids

SENDS = frozenset({"sendto", "sendmsg", "write", "writev", "send"})
RECEIVES = frozenset({"recvfrom", "recvmsg", "read", "readv", "recv"})
TRACED = ",".join(sorted(SENDS | RECEIVES - {"send", "recv"}))
_CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\((\d+),)")
_RESULT = re.compile(r"\)?\s*=\s*(-?\d+)")


def available() -> bool:
    return shutil.which("strace") is not None


@dataclass
class Traffic:
    """Socket calls on the connections to PostgreSQL during one traced phase."""

    round_trips: int
    sends: int
    receives: int  # calls, including those that found nothing to read yet


def parse(lines: Iterable[str], sockets: dict[int, set[int]],
          thread_owner: dict[int, int]) -> Traffic:
    """``lines``: strace -f output (``TID call(fd, ...) = result``, possibly split into
    ``<unfinished ...>`` and ``<... call resumed>``); ``sockets``: process -> its file
    descriptors connected to PostgreSQL; ``thread_owner``: thread id -> process id."""
    pending: dict[int, tuple[str, int]] = {}  # thread -> unfinished call and its fd
    last: dict[tuple[int, int], str] = defaultdict(str)  # connection -> "send" or "receive"
    trips = sends = receives = 0
    for line in lines:
        m = _CALL.match(line)
        if m is None:
            continue
        tid = int(m.group(1))
        if m.group(2):  # resumed
            if tid not in pending:
                continue
            call, fd = pending.pop(tid)
            rest = line[m.end():]
        else:
            call, fd, rest = m.group(3), int(m.group(4)), line[m.end():]
            if "<unfinished ...>" in rest:
                pending[tid] = (call, fd)
                continue
        process = thread_owner.get(tid, tid)
        if fd not in sockets.get(process, ()):
            continue
        result = _RESULT.search(rest[rest.rfind(")"):] if ")" in rest else rest)
        returned = int(result.group(1)) if result else -1
        connection = (process, fd)
        if call in SENDS:
            sends += 1
            if returned > 0:
                last[connection] = "send"
        elif call in RECEIVES:
            receives += 1
            if returned > 0:
                if last[connection] == "send":
                    trips += 1
                last[connection] = "receive"
    return Traffic(trips, sends, receives)


def _threads(pids: Sequence[int]) -> dict[int, int]:
    owner = {}
    for pid in pids:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                owner[int(task.name)] = pid
        except OSError:
            continue
    return owner


def _attached(pids: Sequence[int]) -> bool:
    for tid in _threads(pids):
        try:
            status = Path(f"/proc/{tid}/status").read_text()
        except OSError:
            continue
        if "TracerPid:\t0\n" in status:
            return False
    return True


class Strace:
    """strace attached to a server's process tree for as long as the ``with`` lasts."""

    def __init__(self, root: int, pg_port: int, output: Path):
        self.root, self.pg_port, self.output = root, pg_port, output
        self.pids: list[int] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.traffic: Traffic | None = None

    def __enter__(self) -> Strace:
        self.pids = tree_pids(self.root)
        self.sockets = database_sockets([self.root], self.pg_port)
        command = ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-e", "signal=none",
                   "-s", "0", "-o", str(self.output)]
        for pid in self.pids:
            command += ["-p", str(pid)]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _attached(self.pids):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self._stop()
                raise RuntimeError("strace could not attach to the server: "
                                   + (self.process.stderr.read().decode()
                                      if self.process.stderr else ""))
            time.sleep(0.02)
        return self

    def _stop(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)

    def __exit__(self, *_: object) -> None:
        owner = _threads(self.pids)
        for pid, fds in database_sockets([self.root], self.pg_port).items():
            self.sockets.setdefault(pid, set()).update(fds)
        self._stop()
        with self.output.open(errors="replace") as lines:
            self.traffic = parse(lines, self.sockets, owner)
        self.output.unlink(missing_ok=True)
