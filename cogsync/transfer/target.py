"""The cogsync pool an import writes into: each write compares first and changes only what
differs, so running an import again rewrites nothing that is already identical."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from cogsync.domain import Identity, Record
from cogsync.store.bulk import BulkQueries, StoredDataset, StoredIdentity
from cogsync.store.database import Store, Tx
from cogsync.store.pool_access_queries import PoolRoles, PrincipalTagMap
from cogsync.transfer.errors import TransferError


@dataclass(frozen=True)
class PoolSettings:
    """What the source tells of its pool (DescribeIdentityPool, configuration, events)."""

    name: str
    allow_unauthenticated: bool
    allow_classic_flow: bool
    developer_provider_name: str | None
    attributes: dict[str, Any]
    events: dict[str, str]
    push_sync: dict[str, Any] | None
    cognito_streams: dict[str, Any] | None
    sync_sessions_count: int | None
    roles: PoolRoles | None = None  # None: the source did not tell
    principal_tags: dict[str, PrincipalTagMap] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetHead:
    """A dataset's own values as the source has them."""

    sync_count: int
    creation_date: float
    last_modified_date: float
    last_modified_by: str | None


class Target:
    def __init__(self, store: Store, pool_id: str, dry_run: bool,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.pool_id = pool_id
        self.dry_run = dry_run
        self.clock = clock
        self.developer_provider: str | None = None  # the target pool's, once prepared

    def _tx(self) -> AbstractContextManager[Tx]:
        """A write transaction, or in a dry run a read one (nothing is written)."""
        return self.store.read() if self.dry_run else self.store.write()

    # --- the pool ---------------------------------------------------------------------

    def prepare(self, settings: PoolSettings, *, create: bool, account: str | None,
                counts: Counter[str]) -> list[str]:
        """Creates the pool (``create``) or checks it exists, then brings its settings in
        line with the source's; returns notes for the report."""
        notes: list[str] = []
        with self._tx() as tx:
            pool = tx.get_pool(self.pool_id)
            if pool is None and not create:
                raise TransferError(
                    f"there is no identity pool {self.pool_id} in the target database "
                    "(--into names a pool that exists; without it the import creates one "
                    "with the source's id)"
                )
            if pool is not None and account is not None and pool.account_id != account:
                raise TransferError(
                    f"identity pool {self.pool_id} belongs to account {pool.account_id}, "
                    f"not {account}"
                )
            if pool is None:
                owner = account or tx.first_account()
                if owner is None or not tx.account_exists(owner):
                    raise TransferError(
                        "the target database has no account "
                        + (f"{account}" if account else "yet")
                        + ": run 'cogsync accounts create' (or start the server once) first"
                    )
                notes.append(f"created identity pool {self.pool_id} in account {owner}")
                counts["pool.created"] += 1
                if not self.dry_run:
                    tx.create_pool(self.pool_id, owner, settings.name, self.clock())
                    # The source's usage so far, once: later runs' own sessions would
                    # count on the source, and a re-run is to change nothing.
                    if settings.sync_sessions_count:
                        tx.add_sync_sessions({self.pool_id: settings.sync_sessions_count})
                    pool = tx.get_pool(self.pool_id)
            developer = settings.developer_provider_name
            if pool is not None and pool.developer_provider_name and (
                developer != pool.developer_provider_name
            ):
                notes.append(
                    f"the target pool keeps its developer provider "
                    f"{pool.developer_provider_name!r}; the source's developer logins "
                    f"({developer!r}) are linked under it"
                )
                developer = pool.developer_provider_name
            self.developer_provider = developer
            identity = (settings.name, settings.allow_unauthenticated,
                        settings.allow_classic_flow, developer, settings.attributes)
            current = None if pool is None else (
                pool.name, pool.allow_unauthenticated, pool.allow_classic_flow,
                pool.developer_provider_name, pool.attributes)
            changed = 0
            if identity != current:
                changed += 1
                if pool is not None and not self.dry_run:
                    tx.set_pool_identity(self.pool_id, *identity)
            sync_changes: dict[str, Any] = {}
            if pool is None or pool.events != settings.events:
                sync_changes["events"] = settings.events
            if pool is None or pool.push_sync != settings.push_sync:
                sync_changes["push_sync"] = settings.push_sync
            if pool is None or pool.cognito_streams != settings.cognito_streams:
                sync_changes["cognito_streams"] = settings.cognito_streams
            if sync_changes and pool is not None and not self.dry_run:
                tx.update_pool(self.pool_id, **sync_changes)
            changed += len(sync_changes)
            changed += self._access(tx, settings, new_pool=pool is None)
            counts["pool.settings"] += changed
        return notes

    def _access(self, tx: Tx, settings: PoolSettings, *, new_pool: bool) -> int:
        """Roles, role mappings and principal tag maps as the source has them; how many
        of them were (or, in a dry run, would be) written."""
        changed = 0
        now = self.clock()
        write = not self.dry_run and not new_pool
        if settings.roles is not None and (
            new_pool or tx.pool_roles(self.pool_id) != settings.roles
        ):
            changed += 1
            if write:
                tx.set_pool_roles(self.pool_id, settings.roles, now)
        for provider, tags in settings.principal_tags.items():
            if new_pool or tx.principal_tag_map(self.pool_id, provider) != tags:
                changed += 1
                if write:
                    tx.set_principal_tag_map(self.pool_id, provider, tags, now)
        return changed

    # --- identities -------------------------------------------------------------------

    def put_identity(self, identity_id: str, created_at: float, last_modified_at: float,
                     developer_users: list[str] | None) -> str | None:
        """The identity and its developer logins; why it was skipped, or None."""
        with self._tx() as tx:
            bulk = BulkQueries.of(tx)
            existing = bulk.identity(identity_id)
            if existing is not None and existing.identity_pool_id != self.pool_id:
                return (f"the identity id is in another pool ({existing.identity_pool_id}) "
                        "of the target")
            if self.dry_run:
                return None
            if existing is None or (existing.created_at, existing.last_modified_at) != (
                created_at, last_modified_at
            ):
                bulk.put_identity(self.pool_id, identity_id, created_at, last_modified_at,
                                  exists=existing is not None)
            provider = self.developer_provider
            if developer_users is not None and provider is not None:
                self._developer_logins(tx, identity_id, existing, provider, developer_users)
            return None

    def _developer_logins(self, tx: Tx, identity_id: str, existing: StoredIdentity | None,
                          provider: str, users: list[str]) -> None:
        now = self.clock()
        linked = {s for p, s in (existing.logins if existing else ()) if p == provider}
        for user in users:
            if user in linked:
                continue
            owner = tx.find_login(self.pool_id, provider, user)
            if owner is not None:  # linked elsewhere on the target: the source decides
                tx.remove_login(self.pool_id, provider, user)
            tx.add_login(self.pool_id, provider, user, identity_id, now)
        for user in linked - set(users):  # unlinked on the source since
            tx.remove_login(self.pool_id, provider, user)

    def prune(self, identity_id: str) -> None:
        """Removes an identity, its logins and its data from the target."""
        if self.dry_run:
            return
        with self.store.write() as tx:
            tx.delete_identity(tx.get_identity(identity_id)
                               or Identity(identity_id, self.pool_id, 0.0, 0.0))

    # --- datasets ---------------------------------------------------------------------

    def datasets(self, identity_id: str) -> dict[str, StoredDataset]:
        with self.store.read() as tx:
            return BulkQueries.of(tx).datasets_of(self.pool_id, identity_id)

    def apply(self, identity_id: str, name: str, head: DatasetHead, incoming: list[Record],
              complete: bool, counts: Counter[str]) -> None:
        """Writes the dataset and the records that differ; ``complete``: ``incoming`` is
        all of it (other stored records go), else a delta on top of what is stored."""
        with self._tx() as tx:
            bulk = BulkQueries.of(tx)
            stored = bulk.datasets_of(self.pool_id, identity_id).get(name)
            current = bulk.records_of(stored.dataset_id) if stored else {}
            changed = [r for r in incoming if current.get(r.key) != r]
            keys = {r.key for r in incoming}
            removed = [key for key in current if key not in keys] if complete else []
            final = dict(current)
            final.update((r.key, r) for r in changed)
            for key in removed:
                del final[key]
            values = (
                head.sync_count, head.creation_date, head.last_modified_date,
                head.last_modified_by, sum(r.storage for r in final.values()),
                sum(r.value is not None for r in final.values()),
                stored.merged_into if stored else None,
            )
            dataset_changed = stored is None or values != stored.values()
            if not self.dry_run:
                if stored is None:
                    dataset_id = bulk.insert_dataset(self.pool_id, identity_id, name, values)
                else:
                    dataset_id = stored.dataset_id
                    if dataset_changed:
                        bulk.update_dataset(dataset_id, values)
                tx.put_records(dataset_id, changed)
                bulk.delete_records(dataset_id, removed)
        counts["records.written"] += len(changed)
        counts["records.unchanged"] += len(incoming) - len(changed)
        counts["records.tombstones"] += sum(r.value is None for r in changed)
        counts["records.removed"] += len(removed)
        counts["bytes"] += sum(r.storage for r in changed)
        written = dataset_changed or bool(changed) or bool(removed)
        counts["datasets.written" if written else "datasets.unchanged"] += 1

    def drop(self, identity_id: str, name: str, deleted_sync_count: int | None,
             counts: Counter[str]) -> None:
        """Removes a dataset the source deleted; with a count, records the deletion so
        clients that synced it are told to wipe their copy."""
        with self._tx() as tx:
            bulk = BulkQueries.of(tx)
            stored = bulk.datasets_of(self.pool_id, identity_id).get(name)
            if stored is not None:
                counts["datasets.deleted"] += 1
                if not self.dry_run:
                    bulk.drop_dataset(stored.dataset_id)
            if deleted_sync_count is not None and self._deletion(
                bulk, identity_id, name, deleted_sync_count
            ):
                counts["deletions"] += 1

    def record_deletion(self, identity_id: str, name: str, deleted_sync_count: int,
                        counts: Counter[str]) -> None:
        with self._tx() as tx:
            if self._deletion(BulkQueries.of(tx), identity_id, name, deleted_sync_count):
                counts["deletions"] += 1

    def _deletion(self, bulk: BulkQueries, identity_id: str, name: str, count: int) -> bool:
        if self.dry_run:
            return True
        return bulk.put_deletion(self.pool_id, identity_id, name, count, self.clock())

    def merge_marks(self, identity_id: str, marks: dict[str, str | None]) -> int:
        """Sets which datasets are merged into which (None: not merged); returns how many
        datasets of the identity carry a mark afterwards."""
        with self._tx() as tx:
            bulk = BulkQueries.of(tx)
            stored = bulk.datasets_of(self.pool_id, identity_id)
            for name, parent in marks.items():
                dataset = stored.get(name)
                if dataset is None or dataset.merged_into == parent:
                    continue
                if not self.dry_run:
                    bulk.set_merged_into(dataset.dataset_id, parent)
                stored[name] = dataset._replace(merged_into=parent)
        return sum(d.merged_into is not None for d in stored.values())

