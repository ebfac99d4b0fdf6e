"""The temporary data folder of ``cogsync serve --ephemeral``.

The folder is made in the system's temporary folder (``TMPDIR``, else ``/tmp``) and
removed when the server stops: at its end, on Ctrl-C (SIGINT), SIGTERM and SIGHUP. A
server killed with SIGKILL cannot remove anything; so each ephemeral start first removes
the folders that servers now gone left behind. A server holds a lock on a file in its
folder for as long as it lives (the kernel drops it when the process dies, however it
dies), and only folders whose lock is free are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO

from cogsync.config import Settings
from cogsync.errors import StartupError

PREFIX = "cogsync-ephemeral-"
LOCK_FILE = "server.lock"
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Stopped(BaseException):
    """A stop signal arrived: unwind, remove the folder, then die of the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _lock(path: Path) -> IO[bytes] | None:
    """An exclusive lock on ``path`` (held while the file stays open), or None if a
    living process holds it. Without fcntl (Windows), no lock: nothing is swept."""
    try:
        import fcntl
    except ImportError:
        return None
    handle = open(path, "ab")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def sweep_abandoned(parent: Path | None = None) -> list[Path]:
    """Removes the ephemeral folders of servers that are gone; returns them."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith(PREFIX) or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            if folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        lock_path = folder / LOCK_FILE
        if not lock_path.exists():
            continue  # being made just now, or not ours
        held = _lock(lock_path)
        if held is None:
            continue  # its server is alive
        with held:
            shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


@contextlib.contextmanager
def temporary_data(settings: Settings) -> Iterator[Settings]:
    """The settings with a new temporary data folder if ``settings.ephemeral``; the
    folder is removed when the block ends, also when a stop signal ends it."""
    if not settings.ephemeral:
        yield settings
        return
    sweep_abandoned()
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    except OSError as exc:
        raise StartupError(
            f"--ephemeral cannot make a temporary folder in {tempfile.gettempdir()}: "
            f"{exc.strerror or exc} (set TMPDIR to a folder it may write)"
        ) from None
    # Locked before it takes its name, so that a sweep never finds it unlocked.
    lock = _lock(folder / f".{LOCK_FILE}")
    if lock is not None:
        os.rename(folder / f".{LOCK_FILE}", folder / LOCK_FILE)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    stopped: int | None = None
    try:
        yield replace(settings, data_dir=folder, database_url=None)
    except _Stopped as exc:
        stopped = exc.signum
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            lock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped is not None:
        # Die of the signal, as the process would have without this folder to remove.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        signal.signal(stopped, signal.SIG_DFL)
        os.kill(os.getpid(), stopped)
