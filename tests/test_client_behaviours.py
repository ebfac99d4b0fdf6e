"""What the official mobile sync managers (aws-sdk-android's and aws-sdk-ios's Cognito,
amazon-cognito-js) rely on, checked through boto3 the way they call the service:

- at most 1,024 records per dataset (``LimitExceededException``), configurable with
  ``COGSYNC_MAX_RECORDS``; removed records (tombstones) do not count;
- after a push, they move their ``lastSyncCount`` to the highest SyncCount UpdateRecords
  returned only when it is the ListRecords ``DatasetSyncCount`` plus exactly one (another
  device wrote in between otherwise, and they list again);
- they page ListRecords with ``MaxResults`` 1024 and ListDatasets with 64, following
  ``NextToken`` with the same ``LastSyncCount``.

(``lastSyncCount`` -1, a dataset deleted locally, is the JavaScript Sync Manager test
``a dataset deleted on one device ...`` in tests/js; push payloads are tests/test_push.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import ServerProcess, new_identity_id
from tests.test_sync_semantics import Dataset, error_code, put, remove

AWS_RECORD_LIMIT = 1024


def test_a_dataset_holds_at_most_1024_records(sync: Any, pool_id: str) -> None:
    ds = Dataset(sync, pool_id, new_identity_id(), "full")
    ds.update([put(f"k{i:04}", "v") for i in range(AWS_RECORD_LIMIT)])
    assert ds.describe()["NumRecords"] == AWS_RECORD_LIMIT
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("one-more", "v")])
    assert error_code(excinfo) == ("LimitExceededException", 400)
    assert ds.list()["DatasetSyncCount"] == 1  # nothing applied
    # Changing records that exist is fine; a removed record frees its place.
    ds.update([put("k0000", "changed", 1)])
    ds.update([remove("k0001", 1)])
    ds.update([put("one-more", "v")])
    described = ds.describe()
    assert described["NumRecords"] == AWS_RECORD_LIMIT
    listing = ds.list(MaxResults=1024)  # 1024 live records and one tombstone: two pages
    assert len(listing["Records"]) == AWS_RECORD_LIMIT and listing.get("NextToken")


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose limits hold more than one page of each listing."""
    proc = ServerProcess(tmp_path_factory.mktemp("roomy"),
                         env={"COGSYNC_MAX_RECORDS": "1100", "COGSYNC_MAX_DATASETS": "70"})
    yield proc.start()
    proc.kill()


def test_the_record_limit_is_configurable(roomy: ServerProcess) -> None:
    ds = Dataset(roomy.client(), roomy.pool_id, new_identity_id(), "big")
    ds.update([put(f"k{i:04}", "v") for i in range(1100)])
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("k1100", "v")])
    assert error_code(excinfo) == ("LimitExceededException", 400)


def test_sync_managers_page_with_1024_records_and_64_datasets(roomy: ServerProcess) -> None:
    sync = roomy.client()
    identity_id = new_identity_id()
    ds = Dataset(sync, roomy.pool_id, identity_id, "paged")
    ds.update([put(f"k{i:04}", "v") for i in range(1100)])
    ds.update([put("k0000", "again", 1)])

    # CognitoSyncStorage.listUpdates: MaxResults 1024, the same LastSyncCount each page,
    # the last page's DatasetSyncCount kept.
    keys: list[str] = []
    pages, token = 0, None
    while True:
        page = ds.list(last=0, MaxResults=1024, **({"NextToken": token} if token else {}))
        pages += 1
        keys += [r["Key"] for r in page["Records"]]
        assert page["DatasetSyncCount"] == 2
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 2 and len(keys) == len(set(keys)) == 1100

    # CognitoSyncStorage.getDatasets: MaxResults 64.
    for i in range(69):
        Dataset(sync, roomy.pool_id, identity_id, f"set{i:02}").update([put("k", "v")])
    names: list[str] = []
    pages, token = 0, None
    while True:
        extra = {"NextToken": token} if token else {}
        page = sync.list_datasets(IdentityPoolId=roomy.pool_id, IdentityId=identity_id,
                                  MaxResults=64, **extra)
        pages += 1
        names += [d["DatasetName"] for d in page["Datasets"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 2 and len(names) == len(set(names)) == 70


def _android_push(ds: Dataset, key: str, value: str, record_count: int,
                  between: Any = None) -> tuple[int, int]:
    """DefaultDataset.synchronizeInternal's push: list, write, then compare the highest
    SyncCount written with the listing's DatasetSyncCount. Returns both."""
    listing = ds.list()
    if between is not None:
        between()  # another device writes after this one listed
    written = ds.update([put(key, value, record_count)], token=listing["SyncSessionToken"])
    return listing["DatasetSyncCount"], max(r["SyncCount"] for r in written)


def test_a_push_raises_the_count_by_exactly_one_unless_another_device_wrote(
        sync: Any, pool_id: str) -> None:
    identity_id = new_identity_id()
    phone = Dataset(sync, pool_id, identity_id, "game")
    tablet = Dataset(sync, pool_id, identity_id, "game")
    phone.update([put("level", "1")])

    listed, written = _android_push(phone, "level", "2", 1)
    assert written == listed + 1  # the client fast-forwards: nothing to list again

    listed, written = _android_push(phone, "score", "10", 0,
                                    between=lambda: tablet.update([put("badge", "gold")]))
    assert written == listed + 2  # the client keeps its count and lists again...
    again = phone.list(last=listed)
    assert {r["Key"] for r in again["Records"]} == {"badge", "score"}  # ...finding the badge
    assert again["DatasetSyncCount"] == written
