"""A server's clock, slowed down 1,000 times, for counting what requests cost.

Under callgrind a request takes 50 to 100 times longer than natively (under strace a few
times), but a server's timers (outbox polls twice a second, checkpoints, flushes) keep
firing by the wall clock, so each request would carry that many times its native share of
their work, and a different share each run (on a busy machine, a third of an instruction
count, or a tenth of a round trip). With libfaketime (Debian's ``faketime`` package)
preloaded, the server's clocks run 1,000 times slower (``FAKETIME="+0 x0.001"``): its
timers practically stop, and a count holds the work the requests cause while they are
served. What the timers cost is measured natively instead (the idle servers' CPU).

The server's clock then stays within a second of its start while the client signs
requests with the real time: SigV4 accepts 15 minutes of skew, so such a server can be
measured for 15 minutes.
"""

from __future__ import annotations

import glob

SLOWER_CLOCK = "+0 x0.001"
_FAKETIME = ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
             "/usr/local/lib/faketime/libfaketimeMT.so.1")


def faketime_library() -> str | None:
    """libfaketime for multi-threaded programs, if installed."""
    for pattern in _FAKETIME:
        if found := sorted(glob.glob(pattern)):
            return found[0]
    return None


def slow_clock(faketime: str | None, *variables: str) -> list[str]:
    """The command prefix that runs a server with these environment variables and, with
    ``faketime`` (libfaketime's path), its clocks 1,000 times slower."""
    slower = [f"LD_PRELOAD={faketime}", f"FAKETIME={SLOWER_CLOCK}"] if faketime else []
    return ["env", *variables, *slower] if variables or slower else []
