"""``cogsync export``: a whole database, or one pool, as one consistent stream of lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from cogsync.crypto import MasterKey
from cogsync.store.database import Store
from cogsync.store.snapshot import Snapshot, snapshot
from cogsync.sync.documents import record_document
from cogsync.transfer.errors import TransferError
from cogsync.transfer.export_format import KINDS, RECORD_DOCUMENT, LineWriter, header, to_line

# (kind, table) in file order; datasets and their records come between logins and deletions.
POOL_SECTIONS = (
    ("pool_roles", "identity_pool_roles"),
    ("principal_tag_map", "principal_tag_maps"),
    ("identity", "identities"),
    ("login", "identity_logins"),
    ("inaccessible_identity", "inaccessible_identities"),
    (None, "datasets"),
    ("dataset_deletion", "dataset_deletions"),
    ("device", "devices"),
    ("subscription", "subscriptions"),
)


def master_key_id(master: MasterKey) -> str:
    """Names the master key that sealed an export's secrets, revealing nothing of it."""
    return master.derive("export/master-key-id").hex()[:16]


def record_line(row: dict[str, Any]) -> dict[str, Any]:
    """A record's line; with its stored document only when that is not what the fields
    render (a document written by another version of the rendering, say)."""
    line = to_line(KINDS["record"], row)
    stored = row.get("document")
    if stored is not None:
        stored = bytes(stored)
        fields = [row[f.name] for f in KINDS["record"].fields]
        if stored != record_document(*fields):
            line[RECORD_DOCUMENT] = stored.decode()
    return line


def _pool_lines(snap: Snapshot, pool_id: str | None) -> Iterator[dict[str, Any]]:
    for kind_name, table in POOL_SECTIONS:
        if kind_name is None:
            for what, row in snap.datasets_and_records(pool_id):
                yield to_line(KINDS["dataset"], row) if what == "dataset" else record_line(row)
            continue
        kind = KINDS[kind_name]
        for row in snap.rows(table, pool_id):
            yield to_line(kind, row)


def export(
    store: Store, stream: IO[bytes], key_id: str, pool_id: str | None = None
) -> Counter[str]:
    """Writes the export to ``stream``; returns the number of lines of each kind."""
    with snapshot(store) as snap:
        writer = LineWriter(stream)
        if pool_id is None:
            writer.write(header("database", None, key_id))
            for kind_name in ("account", "access_key", "server_key", "pool"):
                kind = KINDS[kind_name]
                for row in snap.rows(kind.table):
                    writer.write(to_line(kind, row))
        else:
            account_id = snap.pool_account(pool_id)
            if account_id is None:
                raise TransferError(f"there is no identity pool {pool_id} in this database")
            writer.write(header("pool", pool_id, key_id))
            for kind_name in ("account", "access_key"):
                kind = KINDS[kind_name]
                for row in snap.account_rows(kind.table, account_id):
                    writer.write(to_line(kind, row))
            for row in snap.rows("identity_pools", pool_id):
                writer.write(to_line(KINDS["pool"], row))
        for line in _pool_lines(snap, pool_id):
            writer.write(line)
        writer.end()
    return writer.counts
