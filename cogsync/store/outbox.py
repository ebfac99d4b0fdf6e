"""Queries for the transactional outbox, leases and bulk publish jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update

from cogsync.domain import Device
from cogsync.store.prepared import Prepared, Queries
from cogsync.store.schema import bulk_publish_jobs, devices, leases, outbox, subscriptions

PENDING, DEAD = "pending", "dead"
_ENTRY_COLUMNS = (
    "kind",
    "destination",
    "ordering_key",
    "payload",
    "created_at",
    "attempts",
    "next_attempt_at",
    "status",
    "last_error",
)
INSERT_ENTRY = Prepared(
    lambda d: insert(outbox).values(**{name: bindparam(name) for name in _ENTRY_COLUMNS})
)


@dataclass(frozen=True, slots=True)
class NewEntry:
    kind: str  # "stream" or "push"
    destination: str  # stream name, or device id
    ordering_key: str  # deliveries with one key keep their order
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    kind: str
    destination: str
    ordering_key: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    status: str
    last_error: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class BulkPublishJob:
    identity_pool_id: str
    status: str
    started_at: float | None
    completed_at: float | None
    failure_message: str | None
    published: int
    owner: str | None
    heartbeat_at: float | None
    cursor: int = 0
    last_entry: int | None = None


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        kind=row.kind,
        destination=row.destination,
        ordering_key=row.ordering_key,
        payload=orjson.loads(row.payload),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        status=row.status,
        last_error=row.last_error,
        created_at=row.created_at,
    )


class OutboxQueries(Queries):
    # --- the outbox -------------------------------------------------------------

    def add_outbox(self, entries: list[NewEntry], now: float) -> int | None:
        """Adds the entries; returns the id of the last one (None if none)."""
        if not entries:
            return None
        INSERT_ENTRY.run_many(
            self,
            [
                {
                    "kind": e.kind,
                    "destination": e.destination,
                    "ordering_key": e.ordering_key,
                    "payload": orjson.dumps(e.payload).decode(),
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "status": PENDING,
                    "last_error": None,
                }
                for e in entries
            ],
        )
        return self.execute(select(func.max(outbox.c.id))).scalar()

    def outbox_state(self, ordering_prefix: str, up_to_id: int) -> tuple[int, str | None]:
        """(pending entries, an error of a dead one) among this prefix's entries <= id."""
        where = (
            outbox.c.id <= up_to_id,
            outbox.c.ordering_key.startswith(ordering_prefix, autoescape=True),
        )
        # One statement, so one snapshot: an entry that dies while this reads is seen
        # either pending or dead, never neither.
        row = self.execute(
            select(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.status == PENDING, *where)
                .scalar_subquery(),
                select(outbox.c.last_error)
                .where(outbox.c.status == DEAD, *where)
                .limit(1)
                .scalar_subquery(),
            )
        ).first()
        return int(row[0]), row[1]

    def outbox_entries(self, status: str, limit: int, after_id: int = 0) -> list[OutboxEntry]:
        rows = self.execute(
            select(outbox)
            .where(outbox.c.status == status, outbox.c.id > after_id)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [_entry(row) for row in rows]

    def count_outbox(self, status: str) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.status == status)
        return int(self.execute(query).scalar())

    def outbox_stats(self) -> list[tuple[str, str, int, float | None]]:
        """(kind, status, entries, oldest created_at) of the pending and dead entries."""
        rows = self.execute(
            select(outbox.c.kind, outbox.c.status, func.count(), func.min(outbox.c.created_at))
            .where(outbox.c.status.in_((PENDING, DEAD)))
            .group_by(outbox.c.kind, outbox.c.status)
        )
        return [(kind, status, int(n), oldest) for kind, status, n, oldest in rows]

    def outbox_delivered(self, ids: list[int]) -> None:
        if ids:
            self.execute(delete(outbox).where(outbox.c.id.in_(ids)))

    def outbox_retry(
        self, entry_id: int, attempts: int, next_attempt_at: float, error: str
    ) -> None:
        self.execute(
            update(outbox)
            .where(outbox.c.id == entry_id)
            .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error[:2000])
        )

    def outbox_dead(self, entry_id: int, attempts: int, error: str) -> None:
        self.execute(
            update(outbox)
            .where(outbox.c.id == entry_id)
            .values(status=DEAD, attempts=attempts, last_error=error[:2000])
        )

    def outbox_requeue_dead(self, now: float, ids: list[int] | None = None) -> int:
        """Dead entries (all, or those of ``ids``) back to pending, to be tried anew."""
        where = [outbox.c.status == DEAD]
        if ids is not None:
            where.append(outbox.c.id.in_(ids))
        result = self.execute(
            update(outbox).where(*where).values(status=PENDING, attempts=0, next_attempt_at=now)
        )
        return int(result.rowcount or 0)

    # --- push targets -----------------------------------------------------------

    def push_targets(self, pool_id: str, identity_id: str, dataset: str) -> list[Device]:
        """Enabled devices subscribed to the dataset."""
        rows = self.execute(
            select(devices)
            .join(subscriptions, subscriptions.c.device_id == devices.c.device_id)
            .where(
                subscriptions.c.identity_pool_id == pool_id,
                subscriptions.c.identity_id == identity_id,
                subscriptions.c.dataset_name == dataset,
                devices.c.enabled,
            )
            .order_by(devices.c.device_id)
        )
        return [
            Device(
                r.device_id, r.identity_pool_id, r.identity_id, r.platform, r.token, bool(r.enabled)
            )
            for r in rows
        ]

    def device_endpoint(self, device_id: str) -> str | None:
        return self.execute(
            select(devices.c.endpoint_arn).where(devices.c.device_id == device_id)
        ).scalar()

    def set_device_endpoint(self, device_id: str, endpoint_arn: str | None) -> None:
        self.execute(
            update(devices)
            .where(devices.c.device_id == device_id)
            .values(endpoint_arn=endpoint_arn)
        )

    def disable_device(self, device_id: str) -> None:
        self.execute(
            update(devices).where(devices.c.device_id == device_id).values(enabled=False)
        )

    # --- leases -----------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, now: float, ttl: float) -> bool:
        """Takes or renews the named lease; True if ``owner`` holds it now."""
        self.execute(
            update(leases)
            .where(leases.c.name == name)
            .where((leases.c.owner == owner) | (leases.c.expires_at < now))
            .values(owner=owner, expires_at=now + ttl)
        )
        holder = self.execute(select(leases.c.owner).where(leases.c.name == name)).scalar()
        if holder is None:
            self.execute(insert(leases).values(name=name, owner=owner, expires_at=now + ttl))
            return True
        return bool(holder == owner)

    def release_lease(self, name: str, owner: str) -> None:
        self.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))

    # --- bulk publish jobs ------------------------------------------------------

    def get_bulk_job(self, pool_id: str) -> BulkPublishJob | None:
        row = self.execute(
            select(bulk_publish_jobs).where(bulk_publish_jobs.c.identity_pool_id == pool_id)
        ).first()
        if row is None:
            return None
        return BulkPublishJob(
            row.identity_pool_id,
            row.status,
            row.started_at,
            row.completed_at,
            row.failure_message,
            row.published,
            row.owner,
            row.heartbeat_at,
            row.cursor,
            row.last_entry,
        )

    def jobs_in_progress(self) -> list[BulkPublishJob]:
        rows = self.execute(
            select(bulk_publish_jobs.c.identity_pool_id).where(
                bulk_publish_jobs.c.status == "IN_PROGRESS"
            )
        ).scalars()
        jobs = [self.get_bulk_job(pool_id) for pool_id in rows]
        return [job for job in jobs if job is not None]

    def put_bulk_job(self, job: BulkPublishJob) -> None:
        values = {
            "status": job.status,
            "started_at": job.started_at,
            "completed_at": job.completed_at,
            "failure_message": job.failure_message,
            "published": job.published,
            "owner": job.owner,
            "heartbeat_at": job.heartbeat_at,
            "cursor": job.cursor,
            "last_entry": job.last_entry,
        }
        updated = self.execute(
            update(bulk_publish_jobs)
            .where(bulk_publish_jobs.c.identity_pool_id == job.identity_pool_id)
            .values(**values)
        )
        if not updated.rowcount:
            self.execute(
                insert(bulk_publish_jobs).values(identity_pool_id=job.identity_pool_id, **values)
            )
