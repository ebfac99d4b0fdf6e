"""Counting the instructions a running server executes, with valgrind's callgrind.

The server is started under ``valgrind --tool=callgrind --instr-atstart=no
--trace-children=yes`` (start-up is not counted, and a server that serves from child
processes is followed into them). Around a measured phase, ``callgrind_control`` switches
instrumentation on, zeroes the counters and dumps them, in every process of the server's
tree that runs under callgrind; a dump's ``summary:`` line is the instructions executed
since the last zero or dump by every thread of that process.

The server's clock, slowed down: under callgrind a request takes 50 to 100 times longer
than natively, but a server's timers (outbox polls twice a second, checkpoints, flushes)
keep firing by the wall clock, so each request would carry 50 to 100 times its native
share of them, and a different share each run (on a busy machine, a third of the count).
With libfaketime (Debian's ``faketime`` package) preloaded, the server's clocks run 1,000
times slower (``FAKETIME="+0 x0.001"``): its timers practically stop while requests are
counted, and each count holds the work the requests cause while they are served. What the
clock drives is measured natively instead (the idle server's CPU per second). The server's
clock then stays within seconds of its start while the client signs requests with the real
time: SigV4 accepts 15 minutes of skew, so a server can be counted for 15 minutes.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.procs import tree_pids

_SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)


SLOWER_CLOCK = "+0 x0.001"
_FAKETIME = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
             "/usr/local/lib/faketime/libfaketimeMT.so.1")


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def faketime_library() -> str | None:
    """libfaketime for multi-threaded programs, if installed."""
    for pattern in _FAKETIME:
        if found := sorted(glob.glob(pattern)):
            return found[0]
    return None


def _under_callgrind(pid: int) -> bool:
    try:
        return "callgrind" in Path(f"/proc/{pid}/exe").readlink().name
    except OSError:
        return False


class Callgrind:
    """The callgrind runs of one server's process tree; dumps go to ``folder``; with
    ``faketime`` (libfaketime's path), the server's clocks run 1,000 times slower."""

    def __init__(self, folder: Path, faketime: str | None = None):
        self.folder = folder
        self.faketime = faketime

    def wrapper(self) -> list[str]:
        """The command prefix that starts a server under callgrind, not counting yet. A
        fixed hash seed makes a Python server's counts repeat from run to run (string
        hashes decide how its dictionaries and sets are laid out)."""
        slower = ([f"LD_PRELOAD={self.faketime}", f"FAKETIME={SLOWER_CLOCK}"]
                  if self.faketime else [])
        return ["env", "PYTHONHASHSEED=0", *slower, "valgrind", "--tool=callgrind",
                "--instr-atstart=no", "--trace-children=yes",
                f"--callgrind-out-file={self.folder}/callgrind.%p"]

    def _pids(self, root: int) -> list[int]:
        pids = [pid for pid in tree_pids(root) if _under_callgrind(pid)]
        if not pids:
            raise RuntimeError(f"no process of {root}'s tree runs under callgrind")
        return pids

    @staticmethod
    def _control(pid: int, *action: str) -> None:
        done = subprocess.run(["callgrind_control", *action, str(pid)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0 or "OK" not in done.stdout:
            raise RuntimeError(f"callgrind_control {' '.join(action)} {pid} failed: "
                               f"{done.stdout}{done.stderr}")

    def instrument(self, root: int, on: bool) -> None:
        for pid in self._pids(root):
            self._control(pid, "--instr=" + ("on" if on else "off"))

    def zero(self, root: int) -> None:
        for pid in self._pids(root):
            self._control(pid, "--zero")

    def dump(self, root: int) -> int:
        """Instructions executed by the whole tree since the last zero or dump."""
        total = 0
        for pid in self._pids(root):
            before = set(self.folder.glob(f"callgrind.{pid}.*"))
            self._control(pid, "--dump")
            new = set(self.folder.glob(f"callgrind.{pid}.*")) - before
            if len(new) != 1:
                raise RuntimeError(f"callgrind wrote {len(new)} dump files for {pid}")
            path = new.pop()
            found = _SUMMARY.search(path.read_bytes())
            path.unlink()
            if found is None:
                raise RuntimeError(f"no summary in callgrind's dump {path}")
            total += int(found.group(1))
        return total
