"""The Cognito Sync domain: datasets, records, sync counts, conflicts, limits, usage.

Plain Python over the store's transactions; no HTTP and no SQL here. Each public
method is one store transaction, so a failed call changes nothing.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.config import Limits
from cogsync.domain import (
    Dataset,
    Device,
    IdentityPool,
    IdentityUsage,
    Page,
    PoolUsage,
    Record,
    RecordPatch,
    RecordsPage,
)
from cogsync.errors import (
    InvalidConfiguration,
    InvalidParameter,
    LimitExceeded,
    ResourceConflict,
    ResourceNotFound,
    ServiceError,
)
from cogsync.metrics import SYNC_SESSIONS
from cogsync.store.database import Store, Tx
from cogsync.store.outbox import BulkPublishJob, NewEntry
from cogsync.sync.documents import document_position, record_document
from cogsync.sync.effects import (
    Change,
    ChangeAnnouncer,
    ChangeListener,
    SyncTrigger,
    push_message,
    stream_record,
    sync_trigger_event,
)
from cogsync.sync.tokens import TokenSealer

SYNC_TRIGGER = "SyncTrigger"
BULK_PUBLISH_INTERVAL = 24 * 3600.0
EVENT_TYPES = frozenset({SYNC_TRIGGER})


class SessionCounter:
    """Counts new sync sessions in memory; ``flush`` adds them to the pools' totals.

    ListRecords is a read; counting its sessions with a write per call would make every
    read contend for the pool's row. Counts are flushed every second or so (and at
    shutdown); reads of this process add what it has not flushed yet.
    """

    def __init__(self) -> None:
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, pool_id: str) -> None:
        SYNC_SESSIONS.inc()
        with self._lock:
            self._pending[pool_id] += 1

    def pending(self, pool_id: str) -> int:
        with self._lock:
            return self._pending.get(pool_id, 0)

    def flush(self, store: Store) -> None:
        with self._lock:
            counts, self._pending = dict(self._pending), Counter()
        if not counts:
            return
        try:
            with store.write() as tx:
                tx.add_sync_sessions(counts)
        except Exception:
            with self._lock:
                self._pending.update(counts)
            raise


class SyncService:
    def __init__(
        self,
        store: Store,
        tokens: TokenSealer,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        trigger: SyncTrigger | None = None,
        region: str = "us-east-1",
    ):
        self.store = store
        self.tokens = tokens
        self.limits = limits
        self.clock = clock
        self.trigger = trigger
        self.region = region
        self.sessions = SessionCounter()
        self.listeners: list[ChangeListener] = []  # told after the commit, in this process
        self.announcers: list[ChangeAnnouncer] = []  # run inside the change's transaction

    def _announce(self, tx: Tx, change: Change) -> None:
        for announcer in self.announcers:
            announcer(tx, change)

    def _tell(self, change: Change) -> None:
        for listener in self.listeners:
            listener(change)

    def _side_effects(
        self,
        tx: Tx,
        pool: IdentityPool,
        dataset: Dataset,
        written: list[Record],
        device_id: str | None,
        operation: str = "replace",
    ) -> list[NewEntry]:
        """The outbox entries of one change, written in the change's own transaction."""
        key = f"{dataset.identity_pool_id}/{dataset.identity_id}/{dataset.name}"
        entries: list[NewEntry] = []
        streams = pool.cognito_streams or {}
        if streams.get("StreamingStatus") == "ENABLED" and streams.get("StreamName"):
            record = stream_record(
                dataset.identity_pool_id,
                dataset.identity_id,
                dataset.name,
                dataset.sync_count,
                dataset.last_modified_date,
                written,
                operation,
            )
            entries.append(NewEntry("stream", streams["StreamName"], key, record))
        if self._push_platforms(pool):
            message = push_message(
                dataset.identity_pool_id, dataset.identity_id, dataset.name, dataset.sync_count
            )
            for device in tx.push_targets(
                dataset.identity_pool_id, dataset.identity_id, dataset.name
            ):
                if device.device_id == device_id:
                    continue  # the writer knows already
                entries.append(
                    NewEntry(
                        "push",
                        device.device_id,
                        key,
                        {
                            "message": message,
                            "platform": device.platform,
                            "token": device.token,
                            "applicationArns": (pool.push_sync or {}).get("ApplicationArns") or [],
                        },
                    )
                )
        tx.add_outbox(entries, dataset.last_modified_date)
        return entries

    # --- pools ------------------------------------------------------------------

    def _pool(self, tx: Tx, caller: Caller, pool_id: str) -> IdentityPool:
        pool = tx.get_pool(pool_id)
        if pool is None or pool.account_id != caller.account_id:
            raise ResourceNotFound(f"IdentityPool '{pool_id}' not found")
        return pool

    def _pool_usage(self, tx: Tx, pool: IdentityPool) -> PoolUsage:
        storage, modified = tx.pool_storage(pool.identity_pool_id)
        return PoolUsage(
            identity_pool_id=pool.identity_pool_id,
            sync_sessions_count=pool.sync_sessions_count
            + self.sessions.pending(pool.identity_pool_id),
            data_storage=storage,
            last_modified_date=modified,
        )

    def describe_identity_pool_usage(self, caller: Caller, pool_id: str) -> PoolUsage:
        with self.store.read() as tx:
            return self._pool_usage(tx, self._pool(tx, caller, pool_id))

    def list_identity_pool_usage(
        self, caller: Caller, max_results: int | None, next_token: str | None
    ) -> tuple[Page[PoolUsage], int]:
        limit = self._page_size(max_results, self.limits.pools_page)
        scope = f"pools/{caller.account_id}"
        after = self._cursor(next_token, scope)
        with self.store.read() as tx:
            pools = tx.list_pools(caller.account_id, after, limit + 1)
            usages = [self._pool_usage(tx, p) for p in pools[:limit]]
        token = None
        if len(pools) > limit:
            token = self.tokens.next_token(scope, pools[limit - 1].identity_pool_id)
        return Page(usages, token), limit

    def get_cognito_events(self, caller: Caller, pool_id: str) -> dict[str, str]:
        with self.store.read() as tx:
            return self._pool(tx, caller, pool_id).events

    def set_cognito_events(self, caller: Caller, pool_id: str, events: dict[str, Any]) -> None:
        """Updates only the event types given; an empty (or null) value removes one."""
        for event_type, arn in events.items():
            if event_type not in EVENT_TYPES:
                raise InvalidParameter(
                    f"Unsupported event type '{event_type}'; supported: "
                    + ", ".join(sorted(EVENT_TYPES))
                )
            if arn and not _is_lambda_arn(arn):
                raise InvalidParameter(f"'{arn}' is not a Lambda function ARN")
        with self.store.write() as tx:
            current = dict(self._pool(tx, caller, pool_id).events)
            for event_type, arn in events.items():
                if arn:
                    current[event_type] = arn
                else:
                    current.pop(event_type, None)
            tx.update_pool(pool_id, events=current)

    def get_configuration(self, caller: Caller, pool_id: str) -> IdentityPool:
        with self.store.read() as tx:
            return self._pool(tx, caller, pool_id)

    def set_configuration(
        self,
        caller: Caller,
        pool_id: str,
        push_sync: dict[str, Any] | None,
        cognito_streams: dict[str, Any] | None,
    ) -> IdentityPool:
        """Replaces the parts given; parts left out keep their stored value."""
        if cognito_streams is not None:
            status = cognito_streams.get("StreamingStatus")
            if status == "ENABLED" and not cognito_streams.get("StreamName"):
                raise InvalidParameter("StreamName is required when StreamingStatus is ENABLED")
        with self.store.write() as tx:
            self._pool(tx, caller, pool_id)
            changes: dict[str, Any] = {}
            if push_sync is not None:
                changes["push_sync"] = push_sync
            if cognito_streams is not None:
                changes["cognito_streams"] = cognito_streams
            if changes:
                tx.update_pool(pool_id, **changes)
            pool = tx.get_pool(pool_id)
        assert pool is not None
        return pool

    # --- identities and datasets ------------------------------------------------

    def describe_identity_usage(
        self, caller: Caller, pool_id: str, identity_id: str
    ) -> IdentityUsage:
        with self.store.read() as tx:
            self._pool(tx, caller, pool_id)
            count, storage, modified = tx.identity_storage(pool_id, identity_id)
            if count == 0 and not tx.has_deletions(pool_id, identity_id):
                raise ResourceNotFound(f"Identity '{identity_id}' has no data in this pool")
        return IdentityUsage(pool_id, identity_id, count, storage, modified)

    def describe_dataset(
        self, caller: Caller, pool_id: str, identity_id: str, name: str
    ) -> Dataset:
        with self.store.read() as tx:
            self._pool(tx, caller, pool_id)
            dataset = tx.get_dataset(pool_id, identity_id, name)
        if dataset is None:
            raise ResourceNotFound(f"Dataset '{name}' not found")
        return dataset

    def list_datasets(
        self,
        caller: Caller,
        pool_id: str,
        identity_id: str,
        max_results: int | None,
        next_token: str | None,
    ) -> Page[Dataset]:
        limit = self._page_size(max_results, self.limits.datasets_page)
        scope = f"datasets/{pool_id}/{identity_id}"
        after = self._cursor(next_token, scope)
        with self.store.read() as tx:
            self._pool(tx, caller, pool_id)
            found = tx.list_datasets(pool_id, identity_id, after, limit + 1)
        token = self.tokens.next_token(scope, found[limit - 1].name) if len(found) > limit else None
        return Page(found[:limit], token)

    def delete_dataset(self, caller: Caller, pool_id: str, identity_id: str, name: str) -> Dataset:
        with self.store.write() as tx:
            pool = self._pool(tx, caller, pool_id)
            dataset = tx.get_dataset(pool_id, identity_id, name, for_update=True)
            if dataset is None:
                raise ResourceNotFound(f"Dataset '{name}' not found")
            now = self.clock()
            tx.delete_dataset(dataset, now)
            gone = replace(dataset, last_modified_date=now)
            entries = self._side_effects(tx, pool, gone, [], None, operation="remove")
            change = Change(pool_id, identity_id, name, dataset.sync_count, None, len(entries))
            self._announce(tx, change)
        self.store.after_commit(lambda: self._tell(change))
        return dataset

    # --- records ----------------------------------------------------------------

    def list_records(
        self,
        caller: Caller,
        pool_id: str,
        identity_id: str,
        name: str,
        last_sync_count: int | None,
        max_results: int | None,
        next_token: str | None,
        sync_session_token: str | None,
    ) -> RecordsPage:
        after = last_sync_count or 0
        if after < 0:
            raise InvalidParameter("LastSyncCount must not be negative")
        limit = self._page_size(max_results, self.limits.records_page)
        if sync_session_token:
            self.tokens.open_session(sync_session_token, pool_id, identity_id, name)
            session_token = sync_session_token
            new_session = False
        else:
            _, session_token = self.tokens.new_session(pool_id, identity_id, name)
            new_session = True
        scope = f"records/{pool_id}/{identity_id}/{name}/{after}"
        position = self._cursor(next_token, scope)

        with self.store.read() as tx:
            state = tx.dataset_state(pool_id, identity_id, name)
            if state is None or state.account_id != caller.account_id:
                raise ResourceNotFound(f"IdentityPool '{pool_id}' not found")
            dataset, deleted_at = state.dataset, state.deleted_sync_count
            merged = tx.merged_names(pool_id, identity_id, name) if state.has_merged else []
            documents: list[bytes] = []
            upper = 0
            if dataset is not None:
                upper = dataset.sync_count
                cursor: tuple[int, str] | None = None
                if position is not None:
                    try:
                        dataset_id, upper, count, key = position
                        cursor = (int(count), str(key))
                        upper = int(upper)
                    except (TypeError, ValueError):
                        raise InvalidParameter("The NextToken is not valid") from None
                    if dataset_id != dataset.dataset_id:
                        raise InvalidParameter(
                            "The dataset was deleted since this NextToken was issued"
                        )
                documents = tx.record_documents(
                    dataset.dataset_id, after, upper, cursor, limit + 1
                )
        if new_session:
            self.sessions.add(pool_id)

        token = None
        if dataset is not None and len(documents) > limit:
            last_count, last_key = document_position(documents[limit - 1])
            token = self.tokens.next_token(scope, [dataset.dataset_id, upper, last_count, last_key])
        return RecordsPage(
            documents=documents[:limit],
            next_token=token,
            # Every page reports the count the listing started from, so a client that
            # stores it never skips a change made while it was paging.
            dataset_sync_count=upper,
            dataset_exists=dataset is not None,
            deleted_after_requested_sync_count=(deleted_at is not None and 0 < after <= deleted_at),
            last_modified_by=dataset.last_modified_by if dataset else None,
            merged_dataset_names=merged,
            sync_session_token=session_token,
        )

    def update_records(
        self,
        caller: Caller,
        pool_id: str,
        identity_id: str,
        name: str,
        patches: list[RecordPatch],
        device_id: str | None,
        sync_session_token: str,
    ) -> list[Record]:
        """Applies all patches, or none: sync counts decide conflicts, limits apply."""
        try:
            self.tokens.open_session(sync_session_token, pool_id, identity_id, name)
            _check_patches(patches)
        except InvalidParameter:
            # Another account's pool is not found, whatever the token or the patches: their
            # error must neither mask that nor tell that caller anything about the token.
            with self.store.read() as tx:
                self._pool(tx, caller, pool_id)
            raise
        by = device_id or caller.principal
        if not caller.is_developer and patches:
            # Sync Trigger runs for identity writes only, as in AWS; developer writes skip it.
            patches = self._run_sync_trigger(caller, pool_id, identity_id, name, patches)

        with self.store.write() as tx:
            now = self.clock()
            found = tx.pool_and_dataset_for_update(pool_id, identity_id, name)
            if found is not None and found[0].account_id == caller.account_id:
                pool, dataset = found
            else:
                pool = self._pool(tx, caller, pool_id)
                dataset = self._create_dataset(tx, pool_id, identity_id, name, now, by)
            if not patches:
                return []

            stored = tx.get_records(dataset.dataset_id, {p.key for p in patches})
            for patch in patches:
                current = stored.get(patch.key)
                current_count = current.sync_count if current else 0
                if patch.sync_count != current_count:
                    raise ResourceConflict(
                        f"Current SyncCount for: {patch.key} is: {current_count} "
                        f"not: {patch.sync_count}"
                    )

            new_count = dataset.sync_count + 1
            written = [_written(p, new_count, now, by) for p in patches]
            storage = dataset.data_storage
            live = dataset.num_records
            for record in written:
                old = stored.get(record.key)
                if old is not None:
                    storage -= old.storage
                    live -= old.value is not None
                storage += record.storage
                live += record.value is not None
            if storage > self.limits.dataset_bytes:
                raise LimitExceeded(
                    f"Dataset '{name}' would hold {storage} bytes; the limit is "
                    f"{self.limits.dataset_bytes}"
                )
            if live > self.limits.records_per_dataset and live > dataset.num_records:
                raise LimitExceeded(
                    f"Dataset '{name}' would hold {live} records; the limit is "
                    f"{self.limits.records_per_dataset}"
                )
            tx.put_records(dataset.dataset_id, written)
            dataset.sync_count = new_count
            dataset.last_modified_date = now
            dataset.last_modified_by = by
            dataset.data_storage = storage
            dataset.num_records = live
            tx.save_dataset(dataset)
            entries = self._side_effects(tx, pool, dataset, written, device_id)
            change = Change(pool_id, identity_id, name, new_count, device_id, len(entries))
            self._announce(tx, change)
        self.store.after_commit(lambda: self._tell(change))
        return written

    def _run_sync_trigger(
        self, caller: Caller, pool_id: str, identity_id: str, name: str, patches: list[RecordPatch]
    ) -> list[RecordPatch]:
        """The patches as the pool's Sync Trigger function rewrote them (if it has one).

        Keys of the incoming patches keep the client's SyncCount (so conflicts are found as
        usual); a key the function adds is written over whatever is stored at that moment.
        """
        with self.store.read() as tx:
            pool = self._pool(tx, caller, pool_id)
            function = pool.events.get(SYNC_TRIGGER)
            if not function:
                return patches
            dataset = tx.get_dataset(pool_id, identity_id, name)
            current = (
                tx.get_records(dataset.dataset_id, {p.key for p in patches}) if dataset else {}
            )
        if self.trigger is None:
            raise InvalidConfiguration("Sync Trigger is set but no Lambda endpoint is usable")
        event = sync_trigger_event(self.region, pool_id, identity_id, name, patches, current)
        answer = self.trigger.invoke(function, event)
        given = {p.key: p for p in patches}
        added = [key for key in answer if key not in given]
        if added and dataset is not None:
            with self.store.read() as tx:
                current.update(tx.get_records(dataset.dataset_id, added))
        rewritten: list[RecordPatch] = []
        for key, record in answer.items():
            op = record.get("op", "replace")
            if key in given:
                count, date = given[key].sync_count, given[key].device_last_modified_date
            else:
                count, date = (current[key].sync_count if key in current else 0), None
            value = record.get("newValue") if op == "replace" else None
            rewritten.append(RecordPatch(op, key, value, count, date))
        return rewritten

    def _create_dataset(
        self, tx: Tx, pool_id: str, identity_id: str, name: str, now: float, by: str
    ) -> Dataset:
        tx.lock_identity(pool_id, identity_id)
        dataset = tx.get_dataset(pool_id, identity_id, name, for_update=True)
        if dataset is not None:  # created by a concurrent call while we waited
            return dataset
        if tx.count_datasets(pool_id, identity_id) >= self.limits.datasets_per_identity:
            raise LimitExceeded(
                f"Identity '{identity_id}' already has {self.limits.datasets_per_identity} "
                "datasets, the most allowed"
            )
        deleted_at = tx.deleted_sync_count(pool_id, identity_id, name)
        # A re-created dataset counts on past the deleted one (plus one), so any sync
        # count an old client holds is <= the deletion point and is told to wipe.
        base = 0 if deleted_at is None else deleted_at + 1
        return tx.create_dataset(pool_id, identity_id, name, base, now, by)

    # --- bulk publish -------------------------------------------------------------

    def bulk_publish(self, caller: Caller, pool_id: str) -> None:
        """Starts the job; the bulk publisher of some process runs it."""
        now = self.clock()
        with self.store.write() as tx:
            pool = self._pool(tx, caller, pool_id)
            streams = pool.cognito_streams or {}
            if streams.get("StreamingStatus") != "ENABLED" or not streams.get("StreamName"):
                raise InvalidParameter(
                    "Cognito Streams is not enabled for this identity pool; enable it with "
                    "SetIdentityPoolConfiguration first"
                )
            job = tx.get_bulk_job(pool_id)
            if job is not None and job.status == "IN_PROGRESS":
                raise ServiceError(
                    "A bulk publish is already in progress for this pool",
                    code="DuplicateRequestException",
                )
            if (
                job is not None
                and job.status == "SUCCEEDED"
                and job.completed_at
                and now - job.completed_at < BULK_PUBLISH_INTERVAL
            ):
                raise ServiceError(
                    "The last bulk publish of this pool succeeded less than 24 hours ago",
                    code="AlreadyStreamedException",
                )
            tx.put_bulk_job(BulkPublishJob(pool_id, "IN_PROGRESS", now, None, None, 0, None, None))

    def bulk_publish_details(self, caller: Caller, pool_id: str) -> BulkPublishJob:
        with self.store.read() as tx:
            self._pool(tx, caller, pool_id)
            job = tx.get_bulk_job(pool_id)
        if job is None:
            return BulkPublishJob(pool_id, "NOT_STARTED", None, None, None, 0, None, None)
        return job

    # --- push sync: devices and subscriptions (identity credentials) -------------

    @staticmethod
    def _push_platforms(pool: IdentityPool) -> set[str]:
        """Platforms with an SNS platform application in the pool's PushSync."""
        arns = (pool.push_sync or {}).get("ApplicationArns") or ()
        return {arn.split(":app/", 1)[1].split("/", 1)[0] for arn in arns if ":app/" in arn}

    def register_device(
        self, caller: Caller, pool_id: str, identity_id: str, platform: str, token: str
    ) -> str:
        """The device id for this identity's push token (the same one on a second call)."""
        if not token:
            raise InvalidParameter("Token must not be empty")
        with self.store.write() as tx:
            pool = self._pool(tx, caller, pool_id)
            if platform not in self._push_platforms(pool):
                raise InvalidConfiguration(
                    f"The identity pool has no push sync configuration for {platform}"
                )
            found = tx.find_device(pool_id, identity_id, platform, token)
            if found is not None:
                return found.device_id
            device = Device(str(uuid.uuid4()), pool_id, identity_id, platform, token, True)
            tx.create_device(device, self.clock())
            return device.device_id

    def _subscription_check(
        self, tx: Tx, caller: Caller, pool_id: str, identity_id: str, name: str, device_id: str
    ) -> None:
        pool = self._pool(tx, caller, pool_id)
        if not self._push_platforms(pool):
            raise InvalidConfiguration("The identity pool has no push sync configuration")
        device = tx.get_device(device_id)
        if device is None or (device.identity_pool_id, device.identity_id) != (
            pool_id,
            identity_id,
        ):
            raise ResourceNotFound(f"Device '{device_id}' not found")
        if tx.get_dataset(pool_id, identity_id, name) is None:
            raise ResourceNotFound(f"Dataset '{name}' not found")

    def subscribe(
        self, caller: Caller, pool_id: str, identity_id: str, name: str, device_id: str
    ) -> None:
        with self.store.write() as tx:
            self._subscription_check(tx, caller, pool_id, identity_id, name, device_id)
            tx.subscribe(pool_id, identity_id, name, device_id, self.clock())

    def unsubscribe(
        self, caller: Caller, pool_id: str, identity_id: str, name: str, device_id: str
    ) -> None:
        with self.store.write() as tx:
            self._subscription_check(tx, caller, pool_id, identity_id, name, device_id)
            tx.unsubscribe(pool_id, identity_id, name, device_id)

    # --- helpers ----------------------------------------------------------------

    @staticmethod
    def _page_size(requested: int | None, largest: int) -> int:
        if requested is None:
            return largest
        if requested < 1:
            raise InvalidParameter("MaxResults must be at least 1")
        return min(requested, largest)

    def _cursor(self, next_token: str | None, scope: str) -> Any:
        if not next_token:
            return None
        return self.tokens.open_next_token(next_token, scope)


def _check_patches(patches: list[RecordPatch]) -> None:
    """Refuses duplicate keys, a replace without a value, a negative SyncCount."""
    seen: set[str] = set()
    for patch in patches:
        if patch.key in seen:
            raise InvalidParameter(f"Key '{patch.key}' appears in more than one patch")
        seen.add(patch.key)
        if patch.op == "replace" and patch.value is None:
            raise InvalidParameter(f"The replace patch for '{patch.key}' has no Value")
        if patch.sync_count < 0:
            raise InvalidParameter(f"SyncCount of '{patch.key}' must not be negative")


def _written(patch: RecordPatch, sync_count: int, now: float, by: str) -> Record:
    """The record a patch writes, with its document rendered once, here."""
    value = patch.value if patch.op == "replace" else None
    date = patch.device_last_modified_date
    document = record_document(patch.key, value, sync_count, now, by, date)
    return Record(patch.key, value, sync_count, now, by, date, document)


def _is_lambda_arn(arn: str) -> bool:
    parts = arn.split(":")
    return (
        len(parts) in (7, 8)
        and parts[0] == "arn"
        and parts[1].startswith("aws")
        and parts[2] == "lambda"
        and re.fullmatch(r"[0-9]+", parts[4]) is not None  # ASCII: isdigit() takes "١"
        and parts[5] == "function"
        and bool(parts[6])
    )
