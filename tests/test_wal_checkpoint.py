"""The SQLite write-ahead log starts again from its beginning even when writes never
pause: a checkpoint that cannot finish is followed by one that waits for its readers."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from cogsync.store.database import Store
from cogsync.store.engine import make_engine, migrate


def _log_frames(path: Path) -> int:
    """Frames in the log now (a PASSIVE checkpoint reports them and waits for no one)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_a_starved_checkpoint_still_restarts_the_log(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    store = Store(engine)
    store.restart_frames = 2000  # the default is 65,536: far more writes than a test needs
    with store.write() as tx:
        tx.create_account("100000000000", 0.0)

    # A reader whose snapshot is older than everything written next: no checkpoint can
    # copy past it, as under a steady stream of requests.
    reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM accounts").fetchall()
    for n in range(store.restart_frames + 200):
        with store.write() as tx:
            tx.create_account(str(200000000000 + n), 1.0)
    threading.Timer(0.3, lambda: reader.execute("COMMIT")).start()

    started = time.monotonic()
    store.checkpoint()  # the PASSIVE part stops at the reader; then it waits for it
    assert time.monotonic() - started >= 0.2
    with store.write() as tx:
        tx.create_account("300000000000", 2.0)
    assert _log_frames(path) < 50  # the log began again with this one write
    reader.close()
    store.close()
