"""``cogsync restore``: an export back into a database, in one transaction.

A whole-database export goes into an empty database only. One pool (``--pool``, or an
export of one pool) goes into any database where it does not clash: the pool, its
identities and devices must be new there; its account is created unless it exists; the
account's developer keys are added unless the same key is there already. Either all of
the file is restored or, on any error, nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cogsync.store.bulk import BATCH, BulkQueries, is_conflict
from cogsync.store.database import Store
from cogsync.store.schema import metadata, server_keys
from cogsync.sync.documents import record_document
from cogsync.transfer.errors import TransferError
from cogsync.transfer.export_format import KINDS, RECORD_DOCUMENT, check_header, to_row

SECRET_KINDS = ("access_key", "server_key")


@dataclass
class _Restore:
    bulk: BulkQueries
    source: str
    pool: str | None  # restoring one pool (into a database that may hold others)
    without_keys: bool
    key_matches: bool
    read: Counter[str] = field(default_factory=Counter)
    restored: Counter[str] = field(default_factory=Counter)
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pending_from: dict[str, int] = field(default_factory=dict)
    dataset_id: int | None = None  # the dataset the next record lines belong to
    held_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    held_keys: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    pool_seen: bool = False
    last_kind: str | None = None

    # --- batching -----------------------------------------------------------------

    def add(self, kind: str, row: dict[str, Any], number: int) -> None:
        rows = self.pending.setdefault(kind, [])
        if not rows:
            self.pending_from[kind] = number
        rows.append(row)
        if len(rows) >= BATCH:
            self.flush(kind)

    def flush(self, kind: str | None = None) -> None:
        for name in [kind] if kind else list(self.pending):
            rows = self.pending.pop(name, [])
            if not rows:
                continue
            try:
                self.bulk.insert_rows(metadata.tables[KINDS[name].table], rows)
            except Exception as exc:
                if is_conflict(exc):
                    raise TransferError(
                        f"{self.source}: a {name} from line {self.pending_from[name]} on "
                        "is already in this database"
                    ) from None
                raise
            self.restored[name] += len(rows)

    # --- lines --------------------------------------------------------------------

    def line(self, number: int, line: dict[str, Any]) -> None:
        kind_name = line.get("type")
        kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            raise TransferError(f"{self.source}: line {number} has an unknown type {kind_name!r}")
        self.read[kind.name] += 1
        row = to_row(kind, line, number)
        if kind.name in SECRET_KINDS and not self.without_keys and not self.key_matches:
            raise TransferError(
                f"{self.source} holds secrets sealed with another master key; restore with "
                "the COGSYNC_SECRET_KEY (or master.key) of the server that exported it, or "
                "with --without-keys (then make new developer keys)"
            )
        if kind.name != self.last_kind:
            self.flush()  # rows go in file order: accounts before their keys and pools
            self.last_kind = kind.name
        handler = getattr(self, f"_{kind.name}", None)
        if handler is not None:
            handler(number, row, line)
        elif self.pool is None or row["identity_pool_id"] == self.pool:
            self.add(kind.name, row, number)

    def _account(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        if self.pool is None:
            self.add("account", row, number)
        else:
            self.held_accounts[row["account_id"]] = row

    def _access_key(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        if self.without_keys:
            return
        if self.pool is None:
            self.add("access_key", row, number)
        else:
            self.held_keys.append((number, row))

    def _server_key(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        if self.without_keys or self.pool is not None:
            return  # a pool restore keeps the database's own signing key
        self.bulk.execute(server_keys.delete().where(server_keys.c.name == row["name"]))
        self.add("server_key", row, number)

    def _pool(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        if self.pool is not None:
            if row["identity_pool_id"] != self.pool:
                return
            self.pool_seen = True
            if self.bulk.pool_exists(self.pool):
                raise TransferError(f"identity pool {self.pool} is already in this database")
            self._pool_account(row["account_id"])
        self.add("pool", row, number)

    def _pool_account(self, account_id: str) -> None:
        """The pool's account and its keys, unless the database has them already."""
        if not self.bulk.account_exists(account_id):
            account = self.held_accounts.get(account_id)
            if account is None:
                raise TransferError(f"{self.source} lacks account {account_id} of the pool")
            self.add("account", account, 0)
            self.flush("account")
        for number, key in self.held_keys:
            if key["account_id"] != account_id:
                continue
            stored = self.bulk.access_key(key["access_key_id"])
            if stored is None:
                self.add("access_key", key, number)
            elif stored != (account_id, key["secret_ciphertext"]):
                raise TransferError(
                    f"developer key {key['access_key_id']} (line {number}) is already in "
                    "this database, with another secret or account"
                )
        self.flush("access_key")

    def _dataset(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        self.flush()
        self.dataset_id = None
        if self.pool is not None and row["identity_pool_id"] != self.pool:
            return
        try:
            self.dataset_id = self.bulk.insert_dataset_row(row)
        except Exception as exc:
            if is_conflict(exc):
                raise TransferError(
                    f"{self.source}: dataset {row['name']} of {row['identity_id']} (line "
                    f"{number}) is already in this database"
                ) from None
            raise
        self.restored["dataset"] += 1

    def _record(self, number: int, row: dict[str, Any], line: dict[str, Any]) -> None:
        if self.read["dataset"] == 0:
            raise TransferError(f"{self.source}: line {number} is a record before any dataset")
        if self.dataset_id is None:
            return  # of a dataset left out (another pool)
        document = line.get(RECORD_DOCUMENT)
        if document is not None and not isinstance(document, str):
            raise TransferError(f"line {number}: record field 'document' must be text")
        row["dataset_id"] = self.dataset_id
        row["document"] = (
            document.encode()
            if document is not None
            else record_document(*(row[f.name] for f in KINDS["record"].fields))
        )
        self.add("record", row, number)


def restore(
    store: Store,
    lines: Iterator[tuple[int, dict[str, Any]]],
    source: str,
    key_id: str,
    *,
    pool_id: str | None = None,
    without_keys: bool = False,
) -> Counter[str]:
    """Restores the export; returns the number of rows restored of each kind."""
    first = next(lines, None)
    head = check_header(first[1] if first else None, source)
    if head["scope"] == "pool":
        if pool_id is not None and pool_id != head["pool"]:
            raise TransferError(f"{source} holds pool {head['pool']}, not {pool_id}")
        pool_id = head["pool"]
    with store.write() as tx:
        bulk = BulkQueries.of(tx)
        if pool_id is None and not bulk.is_empty():
            raise TransferError(
                "this database is not empty: restore a whole database into a new one, or "
                "one pool with --pool"
            )
        state = _Restore(bulk, source, pool_id, without_keys, head.get("master_key_id") == key_id)
        ended = False
        for number, line in lines:
            if ended:
                raise TransferError(f"{source}: line {number} comes after the end line")
            if line.get("type") == "end":
                ended = True
                _check_end(line, state.read, source)
                continue
            state.line(number, line)
        if not ended:
            raise TransferError(f"{source} is cut off: it has no end line")
        if pool_id is not None and not state.pool_seen:
            raise TransferError(f"{source} holds no identity pool {pool_id}")
        state.flush()
    return state.restored


def _check_end(line: dict[str, Any], read: Counter[str], source: str) -> None:
    counts = line.get("counts")
    if not isinstance(counts, dict) or any(read[k] != counts.get(k, 0) for k in KINDS):
        raise TransferError(f"{source}: the end line's counts do not match the lines read")
