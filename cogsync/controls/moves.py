"""Server-side moves: what another device, or the service itself, could do to an app's
data while the app under test runs. Each goes through the services, as the API's calls
do, so sync counts, LastModifiedBy, streams, pushes and the live channel follow."""

from __future__ import annotations

import time
from typing import Any

import orjson

from cogsync.auth.caller import Caller
from cogsync.domain import RecordPatch
from cogsync.errors import ResourceConflict
from cogsync.identity.service import IdentityService
from cogsync.sync.documents import documents_array, documents_of
from cogsync.sync.service import SyncService

CONFLICT_ATTEMPTS = 5  # a real client's write may slip in between listing and writing


def _current_counts(
    service: SyncService, caller: Caller, where: tuple[str, str, str]
) -> tuple[dict[str, int], str]:
    """The sync count of every record of the dataset, and the listing's session token:
    what a device knows after a full sync."""
    counts: dict[str, int] = {}
    token: str | None = None
    next_token: str | None = None
    while True:
        page = service.list_records(caller, *where, last_sync_count=0, max_results=None,
                                    next_token=next_token, sync_session_token=token)
        token = page.sync_session_token
        for document in page.documents:
            record = orjson.loads(document)
            counts[record["Key"]] = record["SyncCount"]
        next_token = page.next_token
        if next_token is None:
            return counts, token


def write_as_device(
    service: SyncService,
    caller: Caller,
    where: tuple[str, str, str],
    values: dict[str, str | None],
    device_id: str,
) -> dict[str, Any]:
    """Writes ``values`` (None removes a key) as a device that has just synced: it lists
    the dataset, then updates with the counts it read, like any client."""
    for _ in range(CONFLICT_ATTEMPTS):
        counts, token = _current_counts(service, caller, where)
        now = time.time()
        patches = [
            RecordPatch("remove" if value is None else "replace", key, value,
                        counts.get(key, 0), now)
            for key, value in values.items()
        ]
        try:
            written = service.update_records(caller, *where, patches, device_id, token)
        except ResourceConflict:
            continue
        return {
            "DatasetSyncCount": written[0].sync_count if written else None,
            "Records": documents_array(documents_of(written)),
        }
    raise ResourceConflict(
        f"Other writes to the dataset kept coming: gave up after {CONFLICT_ATTEMPTS} attempts"
    )


def merge_identities(
    identity: IdentityService, caller: Caller, pool_id: str, source: str, target: str
) -> dict[str, Any]:
    identity.merge_identities(caller, pool_id, source, target)
    return {"IdentityId": target}
