"""What an operator does to sync data (admin commands, web console), through the sync
service's own rules: a record edited here is an UpdateRecords (a new dataset sync count,
the record's SyncCount checked, streams and pushes written to the outbox), and an
identity erased here has each dataset deleted as DeleteDataset deletes it, so clients
that hold a copy are told to wipe it on their next sync.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cogsync.auth.caller import Caller
from cogsync.domain import Dataset, Identity, Record, RecordPatch
from cogsync.errors import InvalidParameter, ResourceNotFound
from cogsync.store.admin_queries import AdminQueries
from cogsync.sync.effects import Change
from cogsync.sync.service import SyncService

OPERATOR_DEVICE = "cogsync-operator"  # LastModifiedBy of an operator's edit
ALL_DATASETS = 1_000_000


@dataclass(frozen=True)
class IdentitySummary:
    identity_id: str
    datasets: int
    data_storage: int


@dataclass(frozen=True)
class IdentityDetail:
    identity_pool_id: str
    identity_id: str
    identity: Identity | None  # None: an id that only holds data (written by a developer)
    datasets: list[Dataset]
    devices: int


@dataclass(frozen=True)
class Erasure:
    identity_pool_id: str
    identity_id: str
    datasets_deleted: list[str]
    devices_forgotten: int
    identity_forgotten: bool


def pool_owner(service: SyncService, pool_id: str) -> Caller:
    """A developer of the account that owns the pool (what an operator acts as)."""
    with service.store.read() as tx:
        pool = tx.get_pool(pool_id)
    if pool is None:
        raise ResourceNotFound(f"IdentityPool '{pool_id}' not found")
    return Caller(account_id=pool.account_id)


class SyncAdmin:
    def __init__(self, service: SyncService):
        self.service = service
        self.store = service.store

    def identities(
        self, caller: Caller, pool_id: str, search: str | None = None,
        after: str | None = None, limit: int = 100,
    ) -> list[IdentitySummary]:
        with self.store.read() as tx:
            self.service._pool(tx, caller, pool_id)
            admin = AdminQueries.of(tx)
            ids = admin.identity_ids(pool_id, search or None, after, limit)
            counts = admin.dataset_counts(pool_id, ids)
        return [IdentitySummary(i, *counts.get(i, (0, 0))) for i in ids]

    def identity(self, caller: Caller, pool_id: str, identity_id: str) -> IdentityDetail:
        with self.store.read() as tx:
            self.service._pool(tx, caller, pool_id)
            admin = AdminQueries.of(tx)
            if not admin.has_any(pool_id, identity_id):
                raise ResourceNotFound(f"Identity '{identity_id}' not found in {pool_id}")
            identity = tx.get_identity(identity_id)
            if identity is not None and identity.identity_pool_id != pool_id:
                identity = None
            found = tx.list_datasets(pool_id, identity_id, None, ALL_DATASETS)
            devices = admin.device_count(pool_id, identity_id)
        return IdentityDetail(pool_id, identity_id, identity, found, devices)

    def records(
        self, caller: Caller, pool_id: str, identity_id: str, name: str,
        search: str | None = None,
    ) -> tuple[Dataset, list[Record]]:
        """The dataset and its records, removed ones included."""
        with self.store.read() as tx:
            self.service._pool(tx, caller, pool_id)
            dataset = tx.get_dataset(pool_id, identity_id, name)
            if dataset is None:
                raise ResourceNotFound(f"Dataset '{name}' not found")
            return dataset, AdminQueries.of(tx).all_records(dataset.dataset_id, search or None)

    def write_record(
        self, caller: Caller, pool_id: str, identity_id: str, name: str, key: str,
        value: str | None, expected_sync_count: int | None = None,
    ) -> Record:
        """Sets (or, with ``value`` None, removes) one record as an UpdateRecords does.

        ``expected_sync_count``: the record's SyncCount as the operator saw it; if a
        client changed it since, ResourceConflictException and nothing is written.
        None: whatever is stored now."""
        if not key:
            raise InvalidParameter("A record needs a key")
        if expected_sync_count is None:
            with self.store.read() as tx:
                dataset = tx.get_dataset(pool_id, identity_id, name)
                stored = tx.get_records(dataset.dataset_id, {key}) if dataset else {}
            expected_sync_count = stored[key].sync_count if key in stored else 0
        _, token = self.service.tokens.new_session(pool_id, identity_id, name)
        op = "replace" if value is not None else "remove"
        patch = RecordPatch(op, key, value, expected_sync_count, None)
        written = self.service.update_records(
            caller, pool_id, identity_id, name, [patch], OPERATOR_DEVICE, token
        )
        return written[0]

    def delete_dataset(self, caller: Caller, pool_id: str, identity_id: str, name: str) -> Dataset:
        return self.service.delete_dataset(caller, pool_id, identity_id, name)

    def erase(
        self, caller: Caller, pool_id: str, identity_id: str, *, forget: bool = False
    ) -> Erasure:
        """A user's right to erasure, in one transaction: every dataset deleted as
        DeleteDataset deletes it (its stream and push notices go out; clients are told
        to wipe their copy), the identity's devices and subscriptions removed; with
        ``forget``, the identity and its logins too (as DeleteIdentities)."""
        service = self.service
        changes: list[Change] = []
        with self.store.write() as tx:
            pool = service._pool(tx, caller, pool_id)
            admin = AdminQueries.of(tx)
            if not admin.has_any(pool_id, identity_id):
                raise ResourceNotFound(f"Identity '{identity_id}' not found in {pool_id}")
            names = [d.name for d in tx.list_datasets(pool_id, identity_id, None, ALL_DATASETS)]
            now = service.clock()
            for name in names:
                dataset = tx.get_dataset(pool_id, identity_id, name, for_update=True)
                if dataset is None:
                    continue
                tx.delete_dataset(dataset, now)
                gone = replace(dataset, last_modified_date=now)
                entries = service._side_effects(tx, pool, gone, [], None, operation="remove")
                change = Change(pool_id, identity_id, name, dataset.sync_count, None,
                                len(entries))
                service._announce(tx, change)
                changes.append(change)
            devices = admin.forget_devices(pool_id, identity_id)
            forgotten = False
            if forget:
                forgotten = admin.forget_identity(pool_id, identity_id)
                tx.forget_identity_access(identity_id)
        for change in changes:
            self.store.after_commit(lambda change=change: service._tell(change))
        return Erasure(pool_id, identity_id, names, devices, forgotten)

