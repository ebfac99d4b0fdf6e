"""The documents cogsync sends out, in the formats AWS documents for them.

- a Cognito Streams record, one per dataset change (millisecond timestamps);
- the silent push a subscribed device receives when another device changed a dataset;
- the Sync Trigger event a Lambda function receives, and what it may answer.
"""

from __future__ import annotations

import json
from typing import Any

from cogsync.domain import Record, RecordPatch


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


def platform_messages(data: dict[str, Any]) -> dict[str, Any]:
    """The per-platform bodies of an SNS ``MessageStructure=json`` publish.

    GCM/FCM and ADM deliver ``data`` as string extras (Android's sync manager reads
    ``extras.getString("syncCount")`` and parses it), so every value there is a string;
    APNS gets the values as they are, beside ``aps``."""
    as_strings = {k: str(v) for k, v in data.items()}
    silent_apns = json.dumps({"aps": {"content-available": 1}, **data})
    return {
        "default": json.dumps(data),
        "GCM": json.dumps({"data": as_strings}),
        "APNS": silent_apns,
        "APNS_SANDBOX": silent_apns,
        "ADM": json.dumps({"data": as_strings}),
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
