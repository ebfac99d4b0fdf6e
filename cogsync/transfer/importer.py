"""``cogsync import``: a Cognito Sync pool, read over the public API, into a cogsync pool.

Two phases. Listing: the source's identities go into the state file, page by page (or
the ids of ``--identities FILE``). Importing: identities are taken from the state file by
a bounded pool of workers; each one's identity row, developer logins and datasets are
compared with the target and written where they differ, then the identity is marked
done. A run that stops (crash, Ctrl-C, an unreachable source) resumes where it stopped.

A pass is one walk over all identities. ``--since`` starts a new pass once the last one
is complete: datasets whose LastModifiedDate did not move are passed over without
reading a record, the others are read from the sync count the target holds
(ListRecords' LastSyncCount), so a catch-up reads only what changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cogsync.domain import Record
from cogsync.identity.service import POOL_ATTRIBUTES
from cogsync.store.bulk import StoredDataset
from cogsync.store.database import Store
from cogsync.store.pool_access_queries import PoolRoles, PrincipalTagMap
from cogsync.sync.documents import record_document
from cogsync.transfer.checkpoints import IdentityEntry, Imported, ImportState
from cogsync.transfer.errors import TransferError
from cogsync.transfer.report import ImportReport, ProgressBar, Tally
from cogsync.transfer.source import Listing, Source, SourceError, epoch
from cogsync.transfer.target import DatasetHead, PoolSettings, Target

TODO_BATCH = 256
CHECKPOINT_SECONDS = 2.0
INVALID_TOKEN = ("InvalidParameterException", "ValidationException")


@dataclass(frozen=True)
class ImportOptions:
    into: str | None = None  # an existing target pool; default: a pool with the source's id
    account: str | None = None  # the account of a new target pool (default: the first)
    since: bool = False
    prune: bool = False
    dry_run: bool = False
    identities_file: Path | None = None
    state_path: Path | None = None


class _Stopped(Exception):
    """A worker saw the stop signal between two steps."""


class Importer:
    def __init__(self, store: Store, source: Source, options: ImportOptions,
                 report: ImportReport, progress: ProgressBar):
        self.store = store
        self.source = source
        self.options = options
        self.report = report
        self.progress = progress
        self.target = Target(store, options.into or source.pool_id, options.dry_run)
        self.source_developer: str | None = None
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._last_checkpoint = time.monotonic()

    # --- the run ------------------------------------------------------------------------

    def run(self) -> ImportReport:
        state = ImportState(None if self.options.dry_run else self.options.state_path)
        try:
            binding = (self.source.where, self.source.pool_id, self.target.pool_id)
            state.bind(*binding, check_only=True)
            settings = self._source_settings()
            self.report.notes += self.target.prepare(
                settings, create=self.options.into is None, account=self.options.account,
                counts=self.report.counts)
            state.bind(*binding)  # the source answered: the file is this import's now
            self._run(state)
        finally:
            state.close()
            self.progress.close()
        return self.report

    def _run(self, state: ImportState) -> None:
        number = state.current_pass
        if number == 0 or (self.options.since and self._complete(state, number)):
            number += 1
            state.set(**{"pass": str(number)})
        elif self.options.since:
            self.report.notes.append(f"pass {number} was not complete: it is resumed")
        self.report.pass_number = number
        if not state.listed(number):
            self._list(state, number)
        total, done = state.counts(number)
        self.report.counts["identities.listed"] = total
        self.report.counts["identities.already_imported"] = done
        if done == total and total and not self.options.since:
            self.report.notes.append(
                "every identity was imported by an earlier run; --since catches up changes"
            )
        self.progress.phase("importing identities", total, done)
        self._import_all(state, number)
        self.progress.close()
        if self._failure is None and not self.report.interrupted:
            if number > 1:
                self._gone(state, number)
            self.report.complete = True
        self.store.checkpoint()
        if self._failure is not None:
            raise self._failure

    @staticmethod
    def _complete(state: ImportState, number: int) -> bool:
        total, done = state.counts(number)
        return state.listed(number) and done == total

    def _source_settings(self) -> PoolSettings:
        pool = self.source.describe_pool()
        configuration, events, sessions = self.source.pool_extras()
        self.source_developer = pool.get("DeveloperProviderName")
        roles = self.source.pool_roles()
        if roles is None:
            self.report.notes.append("the source did not give the pool's roles "
                                     "(GetIdentityPoolRoles): they are not carried")
        tags = {}
        for provider in _providers(pool):
            found = self.source.principal_tags(provider)
            if found is not None and (found[0] or found[1]):
                tags[provider] = PrincipalTagMap(*found)
        settings = PoolSettings(
            name=pool.get("IdentityPoolName") or self.source.pool_id,
            allow_unauthenticated=bool(pool.get("AllowUnauthenticatedIdentities")),
            allow_classic_flow=bool(pool.get("AllowClassicFlow")),
            developer_provider_name=self.source_developer,
            attributes={k: pool[k] for k in POOL_ATTRIBUTES if pool.get(k) is not None},
            events={k: v for k, v in events.items() if v},
            push_sync=configuration.get("PushSync"),
            cognito_streams=configuration.get("CognitoStreams"),
            sync_sessions_count=sessions,
            roles=None if roles is None else PoolRoles(*roles),
            principal_tags=tags,
        )
        if settings.events.get("SyncTrigger"):
            self.report.notes.append(
                "the pool's Sync Trigger is carried: cogsync invokes "
                f"{settings.events['SyncTrigger']} through COGSYNC_LAMBDA_ENDPOINT (or AWS "
                "Lambda); without a reachable function identities' writes fail"
            )
        if (settings.push_sync or {}).get("ApplicationArns"):
            self.report.notes.append(
                "push sync settings are carried; devices register again (RegisterDevice) "
                "and need a push channel (COGSYNC_PUSH_URLS)"
            )
        if (settings.cognito_streams or {}).get("StreamingStatus") == "ENABLED":
            self.report.notes.append(
                "Cognito Streams settings are carried; records go to the streams backend "
                "of COGSYNC_STREAMS_URL"
            )
        return settings

    # --- listing ------------------------------------------------------------------------

    def _list(self, state: ImportState, number: int) -> None:
        self.progress.phase("listing identities", None)
        if self.options.identities_file is not None:
            for page in _id_file_pages(self.options.identities_file):
                state.save_page(number, page, "more")
                self.progress.advance(len(page))
            state.save_page(number, [], None)
            return
        token = state.listing_token(number)
        while True:
            try:
                items, next_token = self.source.identity_page(token)
            except SourceError as exc:
                if token is not None and exc.code in INVALID_TOKEN:
                    token = None  # the saved NextToken expired: list again from the start
                    state.restart_listing(number)
                    continue
                raise TransferError(
                    f"the source at {self.source.where} refused ListIdentities ({exc}); "
                    "give the identity ids with --identities FILE"
                ) from None
            entries = [
                IdentityEntry(
                    item["IdentityId"], True, epoch(item.get("CreationDate")),
                    epoch(item.get("LastModifiedDate")), tuple(item.get("Logins") or ()),
                )
                for item in items
            ]
            state.save_page(number, entries, next_token)
            self.progress.advance(len(entries))
            if not next_token:
                return
            token = next_token

    # --- importing ------------------------------------------------------------------------

    def _import_all(self, state: ImportState, number: int) -> None:
        workers = self.source.options.concurrency
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cogsync-import")
        pending: set[Future[Tally]] = set()
        try:
            after = ""
            while not self._stop.is_set():
                batch = state.todo(number, after, TODO_BATCH)
                if not batch:
                    break
                for entry in batch:
                    while len(pending) >= 2 * workers and not self._stop.is_set():
                        self._reap(pending)
                    if self._stop.is_set():
                        break
                    pending.add(pool.submit(self._identity_job, state, entry, number))
                after = batch[-1].identity_id
            while pending:
                self._reap(pending)
        except KeyboardInterrupt:
            self._stop.set()
            self.report.interrupted = True
            for future in pending:
                future.cancel()
            while pending:
                self._reap(pending)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _reap(self, pending: set[Future[Tally]]) -> None:
        done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                self.report.add(future.result())
                self.progress.advance()
            elif not isinstance(error, _Stopped):
                self._stop.set()
                if self._failure is None:
                    self._failure = error
                    self.report.error = str(error)
        if time.monotonic() - self._last_checkpoint > CHECKPOINT_SECONDS:
            self._last_checkpoint = time.monotonic()
            if not self.options.dry_run:
                self.store.checkpoint()  # SQLite: keep the write-ahead log short

    def _identity_job(self, state: ImportState, entry: IdentityEntry, number: int) -> Tally:
        if self._stop.is_set():
            raise _Stopped
        tally = Tally()
        imported = state.datasets_of(entry.identity_id)
        try:
            result = self._identity(entry, imported, tally)
        except SourceError as exc:
            tally.skip(entry.identity_id, None, f"the source refused {exc.code}")
            tally.counts["identities.skipped"] += 1
            result = imported
        state.finish(entry.identity_id, number, result)
        return tally

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _identity(self, entry: IdentityEntry, imported: dict[str, Imported],
                  tally: Tally) -> dict[str, Imported]:
        identity_id = entry.identity_id
        if not entry.described:
            described = self.source.describe_identity(identity_id)
            if described is not None:
                entry = IdentityEntry(identity_id, True, epoch(described.get("CreationDate")),
                                      epoch(described.get("LastModifiedDate")),
                                      tuple(described.get("Logins") or ()))
        if entry.described:
            users = None
            for provider in entry.logins:
                if provider == self.source_developer:
                    users = self.source.developer_users(identity_id)
                else:
                    tally.without_subject[provider] += 1
            now = time.time()
            skipped = self.target.put_identity(
                identity_id, entry.created_at or now, entry.last_modified_at or now, users)
            if skipped is not None:
                tally.skip(identity_id, None, skipped)
                tally.counts["identities.skipped"] += 1
                return imported
            tally.counts["logins.carried"] += len(users or ())
        else:
            tally.counts["identities.undescribed"] += 1
        self._check_stop()
        result = self._datasets(identity_id, imported, tally)
        tally.counts["identities.imported"] += 1
        return result

    def _datasets(self, identity_id: str, imported: dict[str, Imported],
                  tally: Tally) -> dict[str, Imported]:
        listed = {d["DatasetName"]: d for d in self.source.datasets(identity_id)}
        stored = self.target.datasets(identity_id)
        result: dict[str, Imported] = {}
        merged: dict[str, list[str]] = {}  # dataset -> MergedDatasetNames, where read
        names = list(listed)
        for name in names:
            self._check_stop()
            try:
                listing = self._dataset(identity_id, name, listed.get(name), stored.get(name),
                                        imported.get(name), tally, result)
            except SourceError as exc:
                tally.skip(identity_id, name, f"the source refused {exc.code}")
                tally.counts["datasets.skipped"] += 1
                if name in imported:
                    result[name] = imported[name]
                continue
            if listing is not None:
                merged[name] = listing.merged
                names += [m for m in listing.merged if m not in names]  # not listed: import
        for name in sorted(set(imported) - set(names)):
            self._check_stop()
            self._gone_dataset(identity_id, name, stored.get(name), imported[name], tally,
                               result)
        if set(listed) - set(stored) and stored:
            # New datasets here may be merged into datasets passed over as unchanged.
            for name in listed:
                if name not in merged and name in result:
                    merged[name] = self.source.merged_names(
                        identity_id, name, result[name].sync_count)
        self._merge_marks(identity_id, merged, stored, tally)
        return result

    def _merge_marks(self, identity_id: str, merged: dict[str, list[str]],
                     stored: dict[str, StoredDataset], tally: Tally) -> None:
        marks: dict[str, str | None] = {}
        for dataset in stored.values():
            if dataset.merged_into in merged:  # its dataset was read: keep it only if named
                marks[dataset.name] = None
        for parent, names in merged.items():
            for name in names:
                marks[name] = parent
        if marks or any(d.merged_into for d in stored.values()):
            tally.counts["datasets.merged"] += self.target.merge_marks(identity_id, marks)

    def _dataset(self, identity_id: str, name: str, meta: dict[str, Any] | None,
                 stored: StoredDataset | None, imported: Imported | None, tally: Tally,
                 result: dict[str, Imported]) -> Listing | None:
        """Imports one dataset; returns the source's listing when one was read."""
        if stored is not None and meta is not None and _same_version(stored, meta):
            tally.counts["datasets.unchanged"] += 1
            result[name] = Imported(stored.sync_count, stored.last_modified_date)
            return None
        if stored is not None and imported is not None and (
            stored.sync_count, stored.last_modified_date
        ) != (imported.sync_count, imported.last_modified_date):
            tally.skip(identity_id, name, "changed on the target since it was imported")
            tally.counts["datasets.skipped"] += 1
            result[name] = imported
            return None
        base = stored.sync_count if stored is not None else 0
        listing = self.source.records(identity_id, name, base)
        if not listing.exists:
            if stored is not None and imported is not None:
                self._gone_dataset(identity_id, name, stored, imported, tally, result)
            return None
        if base > 0 and listing.deleted_after:
            # Deleted on the source and made again since the target's copy: start over.
            count = self.source.deletion_count(identity_id, name, base, None)
            self.target.drop(identity_id, name, count, tally.counts)
            base, stored = 0, None
            listing = self.source.records(identity_id, name, 0)
        records = [_record(r) for r in listing.records]
        sync_count = max([listing.sync_count, *(r.sync_count for r in records)])
        if sync_count < base:
            tally.skip(identity_id, name, "the target's copy is ahead of the source's")
            tally.counts["datasets.skipped"] += 1
            if imported is not None:
                result[name] = imported
            return listing
        head = _head(meta, stored, listing, records, sync_count)
        self.target.apply(identity_id, name, head, records, base == 0, tally.counts)
        # Nothing left from the dataset's first write: it may have been deleted and made
        # again. Clients that synced the old one must be told to wipe it.
        first_write_gone = min((r.sync_count for r in records), default=2) > 1
        if base == 0 and sync_count > 0 and first_write_gone and (
            self.source.deleted_after(identity_id, name, 1)
        ):
            count = self.source.deletion_count(identity_id, name, 1, sync_count)
            self.target.record_deletion(identity_id, name, count, tally.counts)
        result[name] = Imported(sync_count, head.last_modified_date)
        return listing

    def _gone_dataset(self, identity_id: str, name: str, stored: StoredDataset | None,
                      imported: Imported, tally: Tally, result: dict[str, Imported]) -> None:
        """A dataset imported before that the source no longer lists: deleted there."""
        if stored is None:
            return
        if (stored.sync_count, stored.last_modified_date) != (
            imported.sync_count, imported.last_modified_date
        ):
            tally.skip(identity_id, name, "deleted on the source but changed on the target")
            tally.counts["datasets.skipped"] += 1
            result[name] = imported
            return
        count = imported.sync_count
        if self.source.deleted_after(identity_id, name, count):
            count = self.source.deletion_count(identity_id, name, count, None)
        self.target.drop(identity_id, name, count, tally.counts)

    def _gone(self, state: ImportState, number: int) -> None:
        """Identities that the source no longer lists (deleted, or merged into another)."""
        after = ""
        while batch := state.gone(number, after, TODO_BATCH):
            for identity_id in batch:
                self.report.counts["identities.gone"] += 1
                if self.options.prune:
                    self.target.prune(identity_id)
                    if not self.options.dry_run:
                        state.forget(identity_id)
                    self.report.counts["identities.pruned"] += 1
            after = batch[-1]


def _providers(pool: dict[str, Any]) -> list[str]:
    """The login providers a pool names (their principal tag maps are carried)."""
    names = list(pool.get("SupportedLoginProviders") or {})
    names += [arn.split("oidc-provider/", 1)[-1]
              for arn in pool.get("OpenIdConnectProviderARNs") or ()]
    names += [p["ProviderName"] for p in pool.get("CognitoIdentityProviders") or ()
              if p.get("ProviderName")]
    names += list(pool.get("SamlProviderARNs") or ())
    return sorted(set(names))


def _same_version(stored: StoredDataset, meta: dict[str, Any]) -> bool:
    """The target holds the version the source lists: every change of a dataset moves its
    LastModifiedDate, so equal dates (and creator) mean nothing to read."""
    return (
        stored.last_modified_date == epoch(meta.get("LastModifiedDate"))
        and stored.creation_date == epoch(meta.get("CreationDate"))
        and stored.last_modified_by == meta.get("LastModifiedBy")
    )


def _record(raw: dict[str, Any]) -> Record:
    key, value = raw["Key"], raw.get("Value")
    sync_count = int(raw.get("SyncCount") or 0)
    modified = epoch(raw.get("LastModifiedDate")) or 0.0
    by = raw.get("LastModifiedBy")
    device_date = epoch(raw.get("DeviceLastModifiedDate"))
    document = record_document(key, value, sync_count, modified, by, device_date)
    return Record(key, value, sync_count, modified, by, device_date, document)


def _head(meta: dict[str, Any] | None, stored: StoredDataset | None, listing: Listing,
          records: list[Record], sync_count: int) -> DatasetHead:
    record_dates = [r.last_modified_date for r in records]
    listed_date = epoch(meta.get("LastModifiedDate")) if meta else None
    dates = [d for d in (listed_date, *record_dates) if d is not None]
    if not dates and stored is not None:
        dates.append(stored.last_modified_date)
    created = epoch(meta.get("CreationDate")) if meta else None
    if created is None:
        created = stored.creation_date if stored else min(dates, default=time.time())
    by = listing.last_modified_by
    if by is None and meta is not None:
        by = meta.get("LastModifiedBy")
    return DatasetHead(sync_count, created, max(dates, default=created), by)


def _id_file_pages(path: Path, size: int = 500) -> Iterator[list[IdentityEntry]]:
    """The identity ids of a file, one a line (blank lines and # comments left out)."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        page: list[IdentityEntry] = []
        for line in handle:
            identity_id = line.split("#", 1)[0].strip()
            if identity_id:
                page.append(IdentityEntry(identity_id, False, None, None, ()))
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page
