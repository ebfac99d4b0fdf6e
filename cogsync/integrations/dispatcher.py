"""Delivers the outbox at least once, in order per dataset, with retries and backoff.

One process at a time delivers (it holds the ``outbox-dispatcher`` lease, renewed while
it lives), so entries of one dataset go out in sync-count order even with many replicas.
A delivery that fails is retried with exponential backoff; later entries of the same
dataset wait for it. After ``max_attempts`` it is dead: kept, with its last error, for
the operator (``cogsync outbox list --dead``, ``cogsync outbox retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import orjson

from cogsync.integrations.push import DeviceRejected, PushChannel
from cogsync.integrations.streams import StreamBackend
from cogsync.metrics import DELIVERIES, child
from cogsync.store.database import Store
from cogsync.store.outbox import PENDING, OutboxEntry

log = logging.getLogger("cogsync.dispatcher")
LEASE = "outbox-dispatcher"
T = TypeVar("T")


class Dispatcher:
    def __init__(
        self,
        store: Store,
        streams: StreamBackend,
        push: list[PushChannel],
        executor: Executor,
        *,
        poll_interval: float = 0.5,
        lease_seconds: float = 10.0,
        max_attempts: int = 8,
        base_backoff: float = 0.5,
        max_backoff: float = 60.0,
        batch: int = 200,
    ):
        self.store = store
        self.streams = streams
        self.push = push
        self.executor = executor
        self.owner = uuid.uuid4().hex
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.batch = batch
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.delivered = 0

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def wake(self) -> None:
        """Thread-safe: a change was committed, look at the outbox now."""
        if self._loop is not None and self._wakeup is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while True:
            try:
                if await self._in_thread(self._hold_lease):
                    while await self.deliver_once():
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox dispatch failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
            self._wakeup.clear()

    async def stop(self) -> None:
        await self._in_thread(self._release_lease)

    def _hold_lease(self) -> bool:
        with self.store.write() as tx:
            return tx.acquire_lease(LEASE, self.owner, time.time(), self.lease_seconds)

    def _release_lease(self) -> None:
        with self.store.write() as tx:
            tx.release_lease(LEASE, self.owner)

    def _pending(self) -> list[OutboxEntry]:
        with self.store.read() as tx:
            return tx.outbox_entries(PENDING, self.batch)

    async def deliver_once(self) -> bool:
        """One pass over the pending entries; True if it delivered something."""
        entries = await self._in_thread(self._pending)
        now = time.time()
        blocked: set[str] = set()
        delivered: list[int] = []
        retries: list[tuple[int, int, float, str]] = []
        dead: list[tuple[int, int, str]] = []
        rejected: list[str] = []
        outcomes: list[tuple[str, str]] = []  # (channel, outcome), counted once recorded
        for entry in entries:
            if entry.ordering_key in blocked:
                continue
            if entry.next_attempt_at > now:
                blocked.add(entry.ordering_key)
                continue
            try:
                await self._deliver(entry)
                delivered.append(entry.id)
                outcomes.append((entry.kind, "delivered"))
            except DeviceRejected as exc:
                log.warning("push to device %s rejected: %s", entry.destination, exc)
                rejected.append(entry.destination)
                delivered.append(entry.id)
                outcomes.append((entry.kind, "rejected"))
            except Exception as exc:
                attempts = entry.attempts + 1
                error = f"{type(exc).__name__}: {exc}"
                if attempts >= self.max_attempts:
                    log.error(
                        "outbox entry %s is dead after %s attempts: %s", entry.id, attempts, error
                    )
                    dead.append((entry.id, attempts, error))
                    outcomes.append((entry.kind, "dead"))
                else:
                    delay = min(self.max_backoff, self.base_backoff * 2 ** (attempts - 1))
                    retries.append((entry.id, attempts, time.time() + delay, error))
                    blocked.add(entry.ordering_key)
                    outcomes.append((entry.kind, "retry"))
        if delivered or retries or dead:
            await self._in_thread(self._record, delivered, retries, dead, rejected)
        for channel, outcome in outcomes:
            child(DELIVERIES, channel, outcome).inc()
        self.delivered += len(delivered)
        return bool(delivered) and len(entries) == self.batch

    def _record(
        self,
        delivered: list[int],
        retries: list[tuple[int, int, float, str]],
        dead: list[tuple[int, int, str]],
        rejected: list[str],
    ) -> None:
        with self.store.write() as tx:
            tx.outbox_delivered(delivered)
            for entry_id, attempts, at, error in retries:
                tx.outbox_retry(entry_id, attempts, at, error)
            for entry_id, attempts, error in dead:
                tx.outbox_dead(entry_id, attempts, error)
            for device_id in rejected:
                tx.disable_device(device_id)

    async def _deliver(self, entry: OutboxEntry) -> None:
        if entry.kind == "stream":
            partition_key = entry.payload.get("identityId") or entry.ordering_key
            await self.streams.publish(
                entry.destination, partition_key, orjson.dumps(entry.payload)
            )
        elif entry.kind == "push":
            if not self.push:
                raise RuntimeError("no push channel is configured (cogsync serve --push URL)")
            sends: list[Awaitable[None]] = [
                channel.send(entry.destination, entry.payload) for channel in self.push
            ]
            for send in sends:
                await send
        else:
            raise ValueError(f"unknown outbox entry kind {entry.kind}")
