"""One identity's data as one JSON document (a user's request for their data).

The fields are those of the export format's lines (docs/migration.md), with the same
encodings (times as epoch seconds): the identity, its logins, its datasets each with its
records (removed ones included, with a null value), the deletion markers of datasets
deleted before, its devices and subscriptions. Read in one transaction.
"""

from __future__ import annotations

import time
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.errors import ResourceNotFound
from cogsync.store.admin_queries import EXPORT_TABLES, AdminQueries
from cogsync.store.schema import datasets, identities
from cogsync.sync.service import SyncService
from cogsync.transfer.export_format import KINDS, to_line

IDENTITY_FORMAT = "cogsync-identity-export"
IDENTITY_VERSION = 1


def _fields(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    line = to_line(KINDS[kind], row)
    del line["type"]
    return line


def export_identity(
    service: SyncService, caller: Caller, pool_id: str, identity_id: str
) -> dict[str, Any]:
    with service.store.read() as tx:
        service._pool(tx, caller, pool_id)
        admin = AdminQueries.of(tx)
        if not admin.has_any(pool_id, identity_id):
            raise ResourceNotFound(f"Identity '{identity_id}' not found in {pool_id}")
        made = admin.identity_rows(pool_id, identity_id, identities)
        sets = []
        for row in admin.identity_rows(pool_id, identity_id, datasets):
            dataset = _fields("dataset", row)
            dataset["records"] = [
                _fields("record", r) for r in admin.dataset_records_rows(row["dataset_id"])
            ]
            sets.append(dataset)
        others = {
            kind: [_fields(kind, r) for r in admin.identity_rows(pool_id, identity_id, table)]
            for kind, table in EXPORT_TABLES.items()
        }
    return {
        "format": IDENTITY_FORMAT,
        "version": IDENTITY_VERSION,
        "exported_at": time.time(),
        "identity_pool_id": pool_id,
        "identity_id": identity_id,
        "identity": _fields("identity", made[0]) if made else None,
        "logins": others["login"],
        "datasets": sets,
        "dataset_deletions": others["dataset_deletion"],
        "devices": others["device"],
        "subscriptions": others["subscription"],
    }
