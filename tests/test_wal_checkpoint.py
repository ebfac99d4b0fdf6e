"""Under writes that never pause, the SQLite write-ahead log still starts over from its
beginning instead of growing without end.

(What makes sure of it in the server, where requests keep every plain checkpoint from
finishing, is the last pass that holds the writers back once the log is past its
threshold. In this test a writing thread shares the interpreter with the checkpoints and
plain passes sometimes finish by themselves, so the test holds the outcome, not that
step.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from cogsync.store.database import Store
from cogsync.store.engine import make_engine, migrate
from tests.server import independent_of_backend

pytestmark = independent_of_backend


def test_a_log_that_steady_writes_keep_growing_still_starts_over(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    migrate(engine)
    store = Store(engine)
    store.restart_frames = 1000  # the default is 65,536: far more writes than a test needs
    stop = threading.Event()

    def write_without_pause() -> None:
        n = 0
        while not stop.is_set():
            with store.write() as tx:
                tx.create_account(str(200_000_000_000 + n), 1.0)
            n += 1

    writer = threading.Thread(target=write_without_pause)
    writer.start()
    logs: list[int] = []  # frames in the log, as each checkpoint found them
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            logs.append(store.checkpoint())  # what the server does every 50 ms under load
            if max(logs) > store.restart_frames and logs[-1] < max(logs) // 2:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join()
        store.close()
    assert max(logs) > store.restart_frames, logs  # plain passes never let the log restart
    assert logs[-1] < max(logs) // 2, logs  # and then it did start over
