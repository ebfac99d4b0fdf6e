"""What the sync service hands to the integrations, and what it needs from them.

The service owns this interface; the integrations (outbox dispatcher, live channel, Sync
Trigger invoker) import it, never the other way:

- :class:`Change`, told after each commit to listeners and, inside the change's own
  transaction, to announcers;
- :class:`SyncTrigger`, the Lambda invoker the service calls on an identity's write;
- the documents of a change, in the formats AWS documents for them: a Cognito Streams
  record (millisecond timestamps), the silent push a subscribed device receives when
  another device changed a dataset, and the Sync Trigger event a function receives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cogsync.domain import Record, RecordPatch
from cogsync.errors import ServiceError

if TYPE_CHECKING:
    from cogsync.store.database import Tx


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change of a dataset, told to listeners (dispatcher, live channel)."""

    identity_pool_id: str
    identity_id: str
    dataset: str
    sync_count: int
    device_id: str | None
    outbox_entries: int


ChangeListener = Callable[[Change], None]  # after the commit, in this process
ChangeAnnouncer = Callable[["Tx", Change], None]  # inside the change's transaction


class SyncTrigger(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The function's answer (its ``datasetRecords``), or the AWS error for its
        failure (a :class:`~cogsync.errors.ServiceError`)."""
        ...


class InvalidLambdaFunctionOutput(ServiceError):
    code = "InvalidLambdaFunctionOutputException"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def stream_record(
    pool_id: str,
    identity_id: str,
    dataset: str,
    sync_count: int,
    last_modified: float,
    records: list[Record],
    operation: str = "replace",
) -> dict[str, Any]:
    return {
        "identityPoolId": pool_id,
        "identityId": identity_id,
        "dataSetName": dataset,
        "operation": operation,
        "kinesisSyncRecords": [
            {
                "key": r.key,
                "value": r.value,
                "syncCount": r.sync_count,
                "lastModifiedDate": _ms(r.last_modified_date),
                "deviceLastModifiedDate": _ms(r.device_last_modified_date),
                "op": "replace" if r.value is not None else "remove",
            }
            for r in records
        ],
        "lastModifiedDate": _ms(last_modified),
        "kinesisSyncRecordsURL": None,
        "payloadType": "Inline",
        "syncCount": sync_count,
    }


def push_message(pool_id: str, identity_id: str, dataset: str, sync_count: int) -> dict[str, Any]:
    """The data of the silent notification Cognito Sync sends to subscribed devices."""
    return {
        "source": "cognito-sync",
        "type": "SyncTrigger",
        "syncCount": sync_count,
        "identityPoolId": pool_id,
        "identityId": identity_id,
        "datasetName": dataset,
    }


def sync_trigger_event(
    region: str,
    pool_id: str,
    identity_id: str,
    dataset: str,
    patches: list[RecordPatch],
    current: dict[str, Record],
) -> dict[str, Any]:
    return {
        "version": 2,
        "eventType": "SyncTrigger",
        "region": region,
        "identityPoolId": pool_id,
        "identityId": identity_id,
        "datasetName": dataset,
        "datasetRecords": {
            p.key: {
                "oldValue": current[p.key].value if p.key in current else None,
                "newValue": p.value if p.op == "replace" else None,
                "op": p.op,
            }
            for p in patches
        },
    }
