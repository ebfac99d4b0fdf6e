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
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from cogsync.sync.effects import Change, push_message

QUEUE_LIMIT = 256
CLOSE = b""  # put on a queue that overflowed: the client must reconnect and resync


class LiveBroker:
    def __init__(self) -> None:
        self._subscribers: dict[tuple[str, str], set[asyncio.Queue[bytes]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

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
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._subscribers.setdefault((pool_id, identity_id), set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get((pool_id, identity_id), set())
            queues.discard(queue)
            if not queues:
                self._subscribers.pop((pool_id, identity_id), None)
