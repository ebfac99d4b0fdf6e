"""The live channel: Server-Sent Events for web and desktop clients.

``GET /_cogsync/live?IdentityPoolId=...&IdentityId=...``, signed with SigV4 like any
Cognito Sync call (header, or a presigned URL for ``EventSource``, which cannot set
headers), streams one ``sync`` event per committed change of the identity's datasets,
with the same data as the silent push plus the writer's ``deviceId``. This process's
process's broker is fed directly on SQLite, and through PostgreSQL LISTEN/NOTIFY when
several replicas share a PostgreSQL database (see ``live_fanout``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import orjson

from cogsync.sync.effects import Change, push_message

QUEUE_LIMIT = 256
READY_WAIT = 5.0  # seconds a new subscription waits for its LISTEN (the listener may be down)
CLOSE = b""  # put on a queue that overflowed: the client must reconnect and resync


class Watcher(Protocol):
    """What brings other processes' changes of an identity here (PostgreSQL's LISTEN)."""

    def want(self, key: tuple[str, str]) -> asyncio.Future[None]: ...

    def unwant(self, key: tuple[str, str]) -> None: ...


class LiveBroker:
    def __init__(self) -> None:
        self._subscribers: dict[tuple[str, str], set[asyncio.Queue[bytes]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.watcher: Watcher | None = None
        self._watched: dict[tuple[str, str], asyncio.Future[None]] = {}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, change: Change) -> None:
        """Thread-safe; called after each commit."""
        if self._loop is not None and change.dataset:
            self._loop.call_soon_threadsafe(self.fan_out, change)

    def fan_out(self, change: Change) -> None:
        """On the event loop: hand the change to this process's connections."""
        queues = self._subscribers.get((change.identity_pool_id, change.identity_id))
        if not queues:
            return
        data = {
            **push_message(
                change.identity_pool_id, change.identity_id, change.dataset, change.sync_count
            ),
            "deviceId": change.device_id,
        }
        event = b"event: sync\ndata: " + orjson.dumps(data) + b"\n\n"
        for queue in list(queues):
            if queue.qsize() >= QUEUE_LIMIT - 1:
                queue.put_nowait(CLOSE)
                queues.discard(queue)
            else:
                queue.put_nowait(event)

    @contextmanager
    def subscribe(self, pool_id: str, identity_id: str) -> Iterator[asyncio.Queue[bytes]]:
        """On the event loop. Changes of other processes arrive once :meth:`ready`."""
        key = (pool_id, identity_id)
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._subscribers.setdefault(key, set()).add(queue)
        if self.watcher is not None and key not in self._watched:
            self._watched[key] = self.watcher.want(key)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(key, set())
            queues.discard(queue)
            if not queues:
                self._subscribers.pop(key, None)
                if self._watched.pop(key, None) is not None and self.watcher is not None:
                    self.watcher.unwant(key)

    async def ready(self, pool_id: str, identity_id: str) -> None:
        """Returns once changes made through any process reach this subscription (at
        once on SQLite; on PostgreSQL once this process LISTENs to the identity)."""
        watched = self._watched.get((pool_id, identity_id))
        if watched is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(watched), READY_WAIT)
