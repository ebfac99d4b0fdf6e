"""What a serving process runs beside the request path, wired together.

The thread pool for store work; the outbox dispatcher (streams and push) and the bulk
publisher; the live channel's broker (fed directly on SQLite, through PostgreSQL
LISTEN/NOTIFY on PostgreSQL); the store's upkeep (session counts, SQLite checkpoints).
Each is hooked to the sync service's change interface here, started with the app's
lifespan and stopped with it, every step whatever the one before raised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from cogsync.components import Components
from cogsync.integrations.bulk_publish import BulkPublisher
from cogsync.integrations.dispatcher import Dispatcher
from cogsync.integrations.live import LiveBroker
from cogsync.integrations.push import open_push, stored_endpoints
from cogsync.integrations.streams import open_streams
from cogsync.metrics import TALLY, flush_metrics_forever
from cogsync.store_upkeep import checkpoint_forever, flush_forever

if TYPE_CHECKING:
    from cogsync.integrations.live_fanout import PostgresFanout

log = logging.getLogger("cogsync")
T = TypeVar("T")


class Runtime:
    def __init__(self, components: Components, *, flush_interval: float = 1.0):
        self.c = components
        settings = components.settings
        store = components.store
        service = components.service
        # SQLite answers in microseconds and serializes writers anyway: its work runs on
        # the event loop, where 16 threads fighting for the GIL cost five times the
        # throughput. PostgreSQL waits on the network: its work runs on threads.
        self.inline = store.dialect == "sqlite"
        self.executor = ThreadPoolExecutor(
            max_workers=4 if self.inline else 16, thread_name_prefix="cogsync-db"
        )
        self.flush_interval = flush_interval
        self.dispatcher = Dispatcher(
            store,
            open_streams(settings.resolved_streams_url, settings.region),
            [
                open_push(url, settings.region, stored_endpoints(store),
                          settings.push_webhook_secret)
                for url in settings.push_urls
            ],
            self.executor,
            max_attempts=settings.outbox_max_attempts,
            base_backoff=settings.outbox_backoff_seconds,
            lease_seconds=settings.lease_seconds,
        )
        self.bulk_publisher = BulkPublisher(
            store, self.executor, stale_after=settings.job_stale_seconds
        )
        self.live = LiveBroker()
        self.fanout: PostgresFanout | None = None
        if store.dialect == "postgresql":
            from cogsync.integrations.live_fanout import PostgresFanout  # needs psycopg

            self.fanout = PostgresFanout(settings.resolved_database_url, self.live)
            service.announcers.append(self.fanout.announce)
        else:
            service.listeners.append(self.live.publish)
        service.listeners.append(
            lambda change: self.dispatcher.wake() if change.outbox_entries else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def store_work(self, fn: Callable[..., T], *args: Any, blocking: bool = False) -> T:
        """Store-bound work: inline on SQLite unless it may wait on something slow."""
        if self.inline and not blocking:
            return fn(*args)
        return await self.in_thread(fn, *args)

    async def start(self) -> None:
        tune_garbage_collector()
        loop = asyncio.get_running_loop()
        self.live.attach(loop)
        store = self.c.store
        if self.inline:
            store.group_commits(loop)
        if self.fanout is not None:
            threading.Thread(
                target=self.fanout.listen_forever,
                args=(loop,),
                daemon=True,
                name="cogsync-live-listener",
            ).start()
        sessions = self.c.service.sessions
        self._tasks.append(asyncio.create_task(
            flush_forever(lambda: self.in_thread(sessions.flush, store), self.flush_interval)))
        if self.inline:
            self._tasks.append(asyncio.create_task(
                checkpoint_forever(lambda: self.in_thread(store.checkpoint))))
        self._tasks.append(asyncio.create_task(self.dispatcher.run()))
        self._tasks.append(asyncio.create_task(self.bulk_publisher.run()))
        self._tasks.append(asyncio.create_task(flush_metrics_forever(self.flush_interval)))

    async def stop(self) -> None:
        """Every step runs, whatever the one before raised (a full disk fails the last
        flush; the store must still be closed)."""
        for task in self._tasks:
            task.cancel()
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("stop the live fan-out", self._stop_fanout),
            ("stop the dispatcher", self.dispatcher.stop),
            ("close the streams backend", self.dispatcher.streams.close),
            ("flush the sync session counts",
             lambda: self.in_thread(self.c.service.sessions.flush, self.c.store)),
        ]
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("shutdown: could not %s", what)
        self.executor.shutdown(wait=True)
        TALLY.flush()  # a stopping worker's last counts stay in the sum of the others
        try:
            self.c.store.close()
        except Exception:
            log.exception("shutdown: could not close the store")

    async def _stop_fanout(self) -> None:
        if self.fanout is not None:
            self.fanout.stop()


def tune_garbage_collector() -> None:
    """What start-up built lives as long as the process: freeze it, so that collections
    no longer walk it; and collect the young generation every 20,000 allocations rather
    than 700 (a request allocates hundreds of short-lived objects, nearly none in cycles)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
