"""Runs BulkPublish jobs: every dataset of a pool, as stream records, through the outbox.

A job enqueues its stream records in batches; each batch and the job's cursor are one
transaction, so a crash loses nothing and repeats nothing already enqueued. A process
keeps a heartbeat on the jobs it runs; a job whose runner stopped beating (a crash or a
restart) is taken over by whichever process sees it and resumed from its cursor. The
job succeeds when the dispatcher has delivered all it enqueued, and fails if streaming
is switched off meanwhile or an entry ends dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import Executor
from dataclasses import replace

from cogsync.store.database import Store, Tx
from cogsync.store.outbox import BulkPublishJob, NewEntry
from cogsync.sync.effects import stream_record

log = logging.getLogger("cogsync.bulk_publish")


class BulkPublisher:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        *,
        batch: int = 50,
        poll_interval: float = 0.5,
        stale_after: float = 15.0,
    ):
        self.store = store
        self.executor = executor
        self.owner = uuid.uuid4().hex
        self.batch = batch
        self.poll_interval = poll_interval
        self.stale_after = stale_after

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                while await loop.run_in_executor(self.executor, self.step):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bulk publish step failed; retrying")
            await asyncio.sleep(self.poll_interval)

    def step(self) -> bool:
        """Advances one job by one batch; True if there may be more to do at once."""
        now = time.time()
        with self.store.write() as tx:
            jobs = tx.jobs_in_progress()
            mine = [
                j
                for j in jobs
                if j.owner == self.owner
                or j.owner is None
                or (j.heartbeat_at or 0) < now - self.stale_after
            ]
            if not mine:
                return False
            job = mine[0]
            if job.owner not in (None, self.owner):
                log.info(
                    "bulk publish %s: resuming a job whose runner stopped, from dataset "
                    "%s (%s published)",
                    job.identity_pool_id,
                    job.cursor,
                    job.published,
                )
            job = replace(job, owner=self.owner, heartbeat_at=now)
            pool = tx.get_pool(job.identity_pool_id)
            streams = (pool.cognito_streams or {}) if pool else {}
            if pool is None or streams.get("StreamingStatus") != "ENABLED":
                tx.put_bulk_job(
                    replace(
                        job,
                        status="FAILED",
                        completed_at=now,
                        failure_message="Cognito Streams was disabled, or the "
                        "pool deleted, while the bulk publish ran",
                    )
                )
                return True
            found = tx.pool_datasets(job.identity_pool_id, job.cursor, self.batch)
            if found:
                entries = [
                    NewEntry(
                        "stream",
                        streams["StreamName"],
                        f"{d.identity_pool_id}/{d.identity_id}/{d.name}",
                        stream_record(
                            d.identity_pool_id,
                            d.identity_id,
                            d.name,
                            d.sync_count,
                            d.last_modified_date,
                            tx.live_records(d.dataset_id),
                        ),
                    )
                    for d in found
                ]
                last = tx.add_outbox(entries, now)
                job = replace(
                    job,
                    cursor=found[-1].dataset_id,
                    published=job.published + len(found),
                    last_entry=last or job.last_entry,
                )
                tx.put_bulk_job(job)
                log.info(
                    "bulk publish %s: %s datasets enqueued", job.identity_pool_id, job.published
                )
                return True
            return self._finish(tx, job, now)

    def _finish(self, tx: Tx, job: BulkPublishJob, now: float) -> bool:
        """All enqueued: succeed once delivered, fail if an entry died."""
        pending, error = (0, None)
        if job.last_entry is not None:
            pending, error = tx.outbox_state(f"{job.identity_pool_id}/", job.last_entry)
        if error is not None:
            tx.put_bulk_job(
                replace(
                    job,
                    status="FAILED",
                    completed_at=now,
                    failure_message=f"A stream record could not be delivered: {error}",
                )
            )
            log.error("bulk publish %s failed: %s", job.identity_pool_id, error)
        elif pending == 0:
            tx.put_bulk_job(replace(job, status="SUCCEEDED", completed_at=now))
            log.info("bulk publish %s succeeded: %s datasets", job.identity_pool_id, job.published)
        else:
            tx.put_bulk_job(job)  # heartbeat while the dispatcher delivers
        return False
