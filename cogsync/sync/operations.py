"""The Cognito Sync operations: validated wire input in, wire output out.

One small function per operation, each a call into :class:`SyncService` and a mapping
of its result onto the output shape the service model names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.domain import Dataset, IdentityPool, IdentityUsage, PoolUsage, RecordPatch
from cogsync.protocol.responses import present
from cogsync.sync.documents import documents_array, documents_of
from cogsync.sync.service import SyncService

Params = dict[str, Any]
Result = dict[str, Any] | None
Handler = Callable[[SyncService, Caller, Params], Result]


def _dataset(d: Dataset) -> dict[str, Any]:
    return present(
        {
            "IdentityId": d.identity_id,
            "DatasetName": d.name,
            "CreationDate": d.creation_date,
            "LastModifiedDate": d.last_modified_date,
            "LastModifiedBy": d.last_modified_by,
            "DataStorage": d.data_storage,
            "NumRecords": d.num_records,
        }
    )


def _pool_usage(u: PoolUsage) -> dict[str, Any]:
    return present(
        {
            "IdentityPoolId": u.identity_pool_id,
            "SyncSessionsCount": u.sync_sessions_count,
            "DataStorage": u.data_storage,
            "LastModifiedDate": u.last_modified_date,
        }
    )


def _identity_usage(u: IdentityUsage) -> dict[str, Any]:
    return present(
        {
            "IdentityId": u.identity_id,
            "IdentityPoolId": u.identity_pool_id,
            "LastModifiedDate": u.last_modified_date,
            "DatasetCount": u.dataset_count,
            "DataStorage": u.data_storage,
        }
    )


def _configuration(pool: IdentityPool) -> dict[str, Any]:
    return {
        "IdentityPoolId": pool.identity_pool_id,
        "PushSync": pool.push_sync,
        "CognitoStreams": pool.cognito_streams,
    }


def _where(p: Params) -> tuple[str, str, str]:
    return p["IdentityPoolId"], p["IdentityId"], p["DatasetName"]


def update_records(svc: SyncService, caller: Caller, p: Params) -> Result:
    patches = [  # op, key, value, sync count, device's date: positional is cheaper
        RecordPatch(raw["Op"], raw["Key"], raw.get("Value"), raw["SyncCount"],
                    raw.get("DeviceLastModifiedDate"))
        for raw in p.get("RecordPatches") or ()
    ]
    written = svc.update_records(
        caller, *_where(p), patches, p.get("DeviceId"), p["SyncSessionToken"]
    )
    return {"Records": documents_array(documents_of(written))}


def list_records(svc: SyncService, caller: Caller, p: Params) -> Result:
    page = svc.list_records(
        caller,
        *_where(p),
        last_sync_count=p.get("LastSyncCount"),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
        sync_session_token=p.get("SyncSessionToken"),
    )
    return {
        "Records": documents_array(page.documents),
        "NextToken": page.next_token,
        "Count": len(page.documents),
        "DatasetSyncCount": page.dataset_sync_count,
        "LastModifiedBy": page.last_modified_by,
        "MergedDatasetNames": page.merged_dataset_names,
        "DatasetExists": page.dataset_exists,
        "DatasetDeletedAfterRequestedSyncCount": page.deleted_after_requested_sync_count,
        "SyncSessionToken": page.sync_session_token,
    }


def describe_dataset(svc: SyncService, caller: Caller, p: Params) -> Result:
    return {"Dataset": _dataset(svc.describe_dataset(caller, *_where(p)))}


def delete_dataset(svc: SyncService, caller: Caller, p: Params) -> Result:
    return {"Dataset": _dataset(svc.delete_dataset(caller, *_where(p)))}


def list_datasets(svc: SyncService, caller: Caller, p: Params) -> Result:
    page = svc.list_datasets(
        caller, p["IdentityPoolId"], p["IdentityId"], p.get("MaxResults"), p.get("NextToken")
    )
    return {
        "Datasets": [_dataset(d) for d in page.items],
        "Count": len(page.items),
        "NextToken": page.next_token,
    }


def describe_identity_usage(svc: SyncService, caller: Caller, p: Params) -> Result:
    usage = svc.describe_identity_usage(caller, p["IdentityPoolId"], p["IdentityId"])
    return {"IdentityUsage": _identity_usage(usage)}


def describe_identity_pool_usage(svc: SyncService, caller: Caller, p: Params) -> Result:
    usage = svc.describe_identity_pool_usage(caller, p["IdentityPoolId"])
    return {"IdentityPoolUsage": _pool_usage(usage)}


def list_identity_pool_usage(svc: SyncService, caller: Caller, p: Params) -> Result:
    page, limit = svc.list_identity_pool_usage(caller, p.get("MaxResults"), p.get("NextToken"))
    return {
        "IdentityPoolUsages": [_pool_usage(u) for u in page.items],
        "MaxResults": limit,
        "Count": len(page.items),
        "NextToken": page.next_token,
    }


def get_cognito_events(svc: SyncService, caller: Caller, p: Params) -> Result:
    return {"Events": svc.get_cognito_events(caller, p["IdentityPoolId"])}


def set_cognito_events(svc: SyncService, caller: Caller, p: Params) -> Result:
    svc.set_cognito_events(caller, p["IdentityPoolId"], p["Events"])
    return None


def get_identity_pool_configuration(svc: SyncService, caller: Caller, p: Params) -> Result:
    return _configuration(svc.get_configuration(caller, p["IdentityPoolId"]))


def set_identity_pool_configuration(svc: SyncService, caller: Caller, p: Params) -> Result:
    pool = svc.set_configuration(
        caller, p["IdentityPoolId"], p.get("PushSync"), p.get("CognitoStreams")
    )
    return _configuration(pool)


def register_device(svc: SyncService, caller: Caller, p: Params) -> Result:
    device_id = svc.register_device(
        caller, p["IdentityPoolId"], p["IdentityId"], p["Platform"], p["Token"]
    )
    return {"DeviceId": device_id}


def subscribe_to_dataset(svc: SyncService, caller: Caller, p: Params) -> Result:
    svc.subscribe(caller, *_where(p), p["DeviceId"])
    return {}


def unsubscribe_from_dataset(svc: SyncService, caller: Caller, p: Params) -> Result:
    svc.unsubscribe(caller, *_where(p), p["DeviceId"])
    return {}


def bulk_publish(svc: SyncService, caller: Caller, p: Params) -> Result:
    svc.bulk_publish(caller, p["IdentityPoolId"])
    return {"IdentityPoolId": p["IdentityPoolId"]}


def get_bulk_publish_details(svc: SyncService, caller: Caller, p: Params) -> Result:
    job = svc.bulk_publish_details(caller, p["IdentityPoolId"])
    return {
        "IdentityPoolId": job.identity_pool_id,
        "BulkPublishStartTime": job.started_at,
        "BulkPublishCompleteTime": job.completed_at,
        "BulkPublishStatus": job.status,
        "FailureMessage": job.failure_message,
    }


HANDLERS: dict[str, Handler] = {
    "BulkPublish": bulk_publish,
    "GetBulkPublishDetails": get_bulk_publish_details,
    "RegisterDevice": register_device,
    "SubscribeToDataset": subscribe_to_dataset,
    "UnsubscribeFromDataset": unsubscribe_from_dataset,
    "UpdateRecords": update_records,
    "ListRecords": list_records,
    "DescribeDataset": describe_dataset,
    "DeleteDataset": delete_dataset,
    "ListDatasets": list_datasets,
    "DescribeIdentityUsage": describe_identity_usage,
    "DescribeIdentityPoolUsage": describe_identity_pool_usage,
    "ListIdentityPoolUsage": list_identity_pool_usage,
    "GetCognitoEvents": get_cognito_events,
    "SetCognitoEvents": set_cognito_events,
    "GetIdentityPoolConfiguration": get_identity_pool_configuration,
    "SetIdentityPoolConfiguration": set_identity_pool_configuration,
}
