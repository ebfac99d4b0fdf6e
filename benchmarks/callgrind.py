"""Counting the instructions a running server executes, with valgrind's callgrind.

The server is started under ``valgrind --tool=callgrind --instr-atstart=no
--trace-children=yes`` (start-up is not counted, and a server that serves from child
processes is followed into them). Around a measured phase, ``callgrind_control`` switches
instrumentation on, zeroes the counters and dumps them, in every process of the server's
tree that runs under callgrind; a dump's ``summary:`` line is the instructions executed
since the last zero or dump by every thread of that process.

With a slowed clock (``benchmarks.slow_clock``), the counts hold what the requests cause
while they are served, not the work of the server's timers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.procs import tree_pids
from benchmarks.slow_clock import slow_clock

_SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


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
        return [*slow_clock(self.faketime, "PYTHONHASHSEED=0"), "valgrind",
                "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
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
