"""Datasets, records and sync counts as DESIGN.md states them, through boto3."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import new_identity_id


class Dataset:
    """One dataset of one identity, with the calls a sync client makes."""

    def __init__(self, client: Any, pool_id: str, identity_id: str, name: str = "data"):
        self.client = client
        self.where = dict(IdentityPoolId=pool_id, IdentityId=identity_id, DatasetName=name)

    def list(self, last: int = 0, **extra: Any) -> dict[str, Any]:
        return self.client.list_records(**self.where, LastSyncCount=last, **extra)

    def update(self, patches: list[dict[str, Any]], token: str | None = None,
               **extra: Any) -> list[dict[str, Any]]:
        token = token or self.list()["SyncSessionToken"]
        return self.client.update_records(
            **self.where, SyncSessionToken=token, RecordPatches=patches, **extra
        )["Records"]

    def describe(self) -> dict[str, Any]:
        return self.client.describe_dataset(**self.where)["Dataset"]

    def values(self) -> dict[str, str | None]:
        return {r["Key"]: r.get("Value") for r in self.list()["Records"]}


def put(key: str, value: str, count: int = 0, **extra: Any) -> dict[str, Any]:
    return {"Op": "replace", "Key": key, "Value": value, "SyncCount": count, **extra}


def remove(key: str, count: int) -> dict[str, Any]:
    return {"Op": "remove", "Key": key, "SyncCount": count}


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def ds(sync: Any, pool_id: str, identity_id: str) -> Dataset:
    return Dataset(sync, pool_id, identity_id)


def test_sync_count_rises_by_one_per_call_and_stamps_every_record(ds: Dataset) -> None:
    first = ds.update([put("a", "1"), put("b", "2"), put("c", "3")])
    assert {r["SyncCount"] for r in first} == {1}
    second = ds.update([put("a", "10", 1), put("d", "4")])
    assert {r["SyncCount"] for r in second} == {2}
    listing = ds.list()
    assert listing["DatasetSyncCount"] == 2
    counts = {r["Key"]: r["SyncCount"] for r in listing["Records"]}
    assert counts == {"a": 2, "b": 1, "c": 1, "d": 2}


def test_delta_returns_exactly_records_newer_than_last_sync_count(ds: Dataset) -> None:
    ds.update([put("a", "1"), put("b", "1")])
    ds.update([put("b", "2", 1)])
    ds.update([put("c", "3")])
    assert sorted(r["Key"] for r in ds.list(1)["Records"]) == ["b", "c"]
    assert [r["Key"] for r in ds.list(2)["Records"]] == ["c"]
    assert ds.list(3)["Records"] == []
    assert ds.list(3)["DatasetSyncCount"] == 3


def test_stale_sync_count_conflicts_and_nothing_is_applied(ds: Dataset) -> None:
    ds.update([put("score", "5")])
    with pytest.raises(ClientError) as excinfo:
        # One good patch and one stale one: the whole call fails.
        ds.update([put("fresh", "x"), put("score", "6", 0)])
    assert error_code(excinfo) == ("ResourceConflictException", 409)
    assert "score" in excinfo.value.response["Error"]["Message"]
    assert ds.values() == {"score": "5"}
    assert ds.list()["DatasetSyncCount"] == 1


def test_sync_count_ahead_of_the_server_also_conflicts(ds: Dataset) -> None:
    ds.update([put("k", "v")])
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("k", "w", 7)])
    assert error_code(excinfo) == ("ResourceConflictException", 409)


def test_remove_leaves_a_tombstone_carried_by_deltas(ds: Dataset) -> None:
    ds.update([put("a", "hello"), put("b", "world")])
    removed = ds.update([remove("a", 1)])
    assert removed[0]["Key"] == "a" and "Value" not in removed[0]
    assert removed[0]["SyncCount"] == 2
    delta = ds.list(1)["Records"]
    assert [(r["Key"], r.get("Value"), r["SyncCount"]) for r in delta] == [("a", None, 2)]
    described = ds.describe()
    assert described["NumRecords"] == 1
    assert described["DataStorage"] == len("b") + len("world")
    # The key can be written again from the tombstone's count.
    again = ds.update([put("a", "back", 2)])
    assert again[0]["SyncCount"] == 3
    assert ds.describe()["NumRecords"] == 2


def test_data_storage_counts_utf8_bytes_of_keys_and_values(ds: Dataset) -> None:
    ds.update([put("ключ", "значение"), put("k", "")])
    expected = len("ключ".encode()) + len("значение".encode()) + 1
    assert ds.describe()["DataStorage"] == expected


def test_last_modified_by_and_device_date(ds: Dataset) -> None:
    device_date = 1_600_000_000.5
    ds.update([put("a", "1", DeviceLastModifiedDate=device_date)], DeviceId="phone-1")
    record = ds.list()["Records"][0]
    assert record["LastModifiedBy"] == "phone-1"
    assert record["DeviceLastModifiedDate"].timestamp() == pytest.approx(device_date)
    assert abs(record["LastModifiedDate"].timestamp() - time.time()) < 60
    assert ds.describe()["LastModifiedBy"] == "phone-1"
    assert ds.list()["LastModifiedBy"] == "phone-1"
    ds.update([put("a", "2", 1)], DeviceId="tablet-7")
    assert ds.describe()["LastModifiedBy"] == "tablet-7"


def test_list_records_on_a_missing_dataset(ds: Dataset) -> None:
    listing = ds.list()
    assert listing["DatasetExists"] is False
    assert listing["DatasetSyncCount"] == 0
    assert listing["Records"] == []
    assert listing["MergedDatasetNames"] == []
    assert listing["DatasetDeletedAfterRequestedSyncCount"] is False
    with pytest.raises(ClientError) as excinfo:
        ds.describe()
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)


def test_empty_update_creates_the_dataset_without_counting(ds: Dataset) -> None:
    assert ds.update([]) == []
    listing = ds.list()
    assert listing["DatasetExists"] is True
    assert listing["DatasetSyncCount"] == 0
    assert ds.describe()["NumRecords"] == 0


def test_delete_dataset_returns_it_and_old_clients_are_told(ds: Dataset, sync: Any) -> None:
    ds.update([put("a", "1")])
    ds.update([put("b", "2")])
    gone = sync.delete_dataset(**ds.where)["Dataset"]
    assert gone["DatasetName"] == "data" and gone["NumRecords"] == 2
    with pytest.raises(ClientError) as excinfo:
        ds.describe()
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:
        sync.delete_dataset(**ds.where)
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)

    old_client = ds.list(2)
    assert old_client["DatasetExists"] is False
    assert old_client["DatasetDeletedAfterRequestedSyncCount"] is True
    assert ds.list(0)["DatasetDeletedAfterRequestedSyncCount"] is False

    # Re-created: the old client is still told to wipe; a client of the new one is not.
    recreated = ds.update([put("c", "3")])
    assert ds.list(1)["DatasetDeletedAfterRequestedSyncCount"] is True
    assert ds.list(2)["DatasetDeletedAfterRequestedSyncCount"] is True
    fresh = ds.list(0)
    assert fresh["DatasetDeletedAfterRequestedSyncCount"] is False
    assert [r["Key"] for r in fresh["Records"]] == ["c"]
    new_count = recreated[0]["SyncCount"]
    assert new_count > 2
    assert ds.list(new_count)["DatasetDeletedAfterRequestedSyncCount"] is False
    assert ds.list(new_count)["Records"] == []


def test_deleted_then_recreated_empty_dataset_does_not_loop(ds: Dataset, sync: Any) -> None:
    ds.update([put("a", "1")])
    sync.delete_dataset(**ds.where)
    ds.update([])
    count = ds.list(0)["DatasetSyncCount"]
    assert ds.list(count)["DatasetDeletedAfterRequestedSyncCount"] is False


def test_list_datasets_and_identity_usage(sync: Any, pool_id: str, identity_id: str) -> None:
    for name in ("b-set", "a-set", "c.set"):
        Dataset(sync, pool_id, identity_id, name).update([put("k", "vv")])
    listed = sync.list_datasets(IdentityPoolId=pool_id, IdentityId=identity_id)
    assert [d["DatasetName"] for d in listed["Datasets"]] == ["a-set", "b-set", "c.set"]
    assert listed["Count"] == 3
    assert all(d["NumRecords"] == 1 and d["DataStorage"] == 3 for d in listed["Datasets"])
    usage = sync.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=identity_id)
    usage = usage["IdentityUsage"]
    assert usage["DatasetCount"] == 3
    assert usage["DataStorage"] == 9
    assert usage["IdentityPoolId"] == pool_id and usage["IdentityId"] == identity_id
    assert "LastModifiedDate" in usage


def test_identity_usage_of_an_identity_without_data(sync: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sync.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=new_identity_id())
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)


def test_identities_do_not_see_each_other(sync: Any, pool_id: str) -> None:
    alice = Dataset(sync, pool_id, new_identity_id(), "shared-name")
    bob = Dataset(sync, pool_id, new_identity_id(), "shared-name")
    alice.update([put("secret", "alice")])
    assert bob.list()["DatasetExists"] is False
    bob.update([put("secret", "bob")])
    assert alice.values() == {"secret": "alice"}
    assert bob.values() == {"secret": "bob"}


def test_pool_usage_sums_storage_and_counts_sessions(server: Any) -> None:
    pool = server.cli("pools", "create", "--name", "usage", "--json")
    pool_id = json.loads(pool)["IdentityPoolId"]
    client = server.client()
    before = client.describe_identity_pool_usage(IdentityPoolId=pool_id)["IdentityPoolUsage"]
    assert before["SyncSessionsCount"] == 0 and before["DataStorage"] == 0
    one = Dataset(client, pool_id, new_identity_id())
    two = Dataset(client, pool_id, new_identity_id())
    one.update([put("ab", "cd")])  # a session: list + update
    two.update([put("x", "yz")])  # another session
    token = one.list()["SyncSessionToken"]  # a third
    one.list(0, SyncSessionToken=token)  # the same session continued: not counted
    usage = client.describe_identity_pool_usage(IdentityPoolId=pool_id)["IdentityPoolUsage"]
    assert usage["DataStorage"] == 7
    assert usage["SyncSessionsCount"] == 3
    assert "LastModifiedDate" in usage


def test_nul_and_u0001_in_keys_values_and_device_id_round_trip(ds: Dataset) -> None:
    # AWS accepts any character; PostgreSQL stores U+0000 and U+0001 escaped (text_codec).
    odd = ["\x00", "a\x00b", "\x01", "\x01\x01\x02", "\x00\x02", "\U0001f600\x00"]
    ds.update([put(key, key + "=\x00\x01", DeviceLastModifiedDate=1.5) for key in odd],
              DeviceId="phone\x00\x01")
    assert ds.values() == {key: key + "=\x00\x01" for key in odd}
    assert {r["LastModifiedBy"] for r in ds.list()["Records"]} == {"phone\x00\x01"}
    described = ds.describe()
    assert described["LastModifiedBy"] == "phone\x00\x01"
    # Sizes count the characters, not the stored form.
    assert described["DataStorage"] == sum(len((key * 2 + "=\x00\x01").encode()) for key in odd)
    longest = "\x00" * 1024  # the model's bound, twice as long once escaped
    ds.update([put(longest, "\x00" * 100)])
    assert ds.values()[longest] == "\x00" * 100
