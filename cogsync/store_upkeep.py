"""The store's upkeep while a server runs, off the event loop: the sync session counts
flushed to the database, and SQLite's write-ahead log checkpointed into its file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("cogsync")

CHECKPOINT_BUSY_SECONDS = 0.05  # SQLite: how often the log is copied while it grows
CHECKPOINT_IDLE_SECONDS = 1.0


async def flush_forever(flush: Callable[[], Awaitable[None]], interval: float) -> None:
    """Each ``interval`` seconds: session counts to the database."""
    while True:
        await asyncio.sleep(interval)
        try:
            await flush()
        except Exception:
            log.exception("could not flush sync session counts; will retry")


async def checkpoint_forever(checkpoint: Callable[[], Awaitable[int]]) -> None:
    """SQLite: the write-ahead log into the database file, in small steps while writes
    come in. One large copy a second (tens of MB under full load, with its fsyncs)
    stalled requests for tens of milliseconds; a copy every 50 ms is small. (Under steady
    writes the log still only starts over through the last step of Store.checkpoint,
    once it is past its threshold.) ``checkpoint`` answers the frames copied so far."""
    frames = 0
    while True:
        before = frames
        try:
            frames = await checkpoint()
        except Exception:
            log.exception("could not checkpoint the write-ahead log; will retry")
        busy = frames != before
        await asyncio.sleep(CHECKPOINT_BUSY_SECONDS if busy else CHECKPOINT_IDLE_SECONDS)
