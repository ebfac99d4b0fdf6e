"""The first call a newcomer makes works: list, write, read back."""

from typing import Any


def test_write_then_read_back(sync: Any, pool_id: str, identity_id: str) -> None:
    where = dict(IdentityPoolId=pool_id, IdentityId=identity_id, DatasetName="profile")
    first = sync.list_records(**where)
    assert first["DatasetExists"] is False
    written = sync.update_records(
        **where,
        SyncSessionToken=first["SyncSessionToken"],
        RecordPatches=[{"Op": "replace", "Key": "name", "Value": "Ada", "SyncCount": 0}],
    )["Records"]
    assert [(r["Key"], r["Value"], r["SyncCount"]) for r in written] == [("name", "Ada", 1)]
    again = sync.list_records(**where)
    assert again["DatasetExists"] is True
    assert [(r["Key"], r["Value"]) for r in again["Records"]] == [("name", "Ada")]
