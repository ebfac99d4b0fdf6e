"""NextToken pagination, MaxResults, and the SyncSessionToken's guarantees."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import new_identity_id
from tests.test_sync_semantics import Dataset, error_code, put


def _all_pages(call: Any, key: str, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    token = None
    while True:
        extra = {"NextToken": token} if token else {}
        page = call(**kwargs, **extra)
        pages += 1
        items.extend(page[key])
        token = page.get("NextToken")
        if not token:
            return items, pages


def test_list_records_pages_cover_everything_once(sync: Any, pool_id: str,
                                                  identity_id: str) -> None:
    ds = Dataset(sync, pool_id, identity_id)
    ds.update([put(f"k{i:02}", str(i)) for i in range(25)])
    ds.update([put(f"k{i:02}", f"v{i}", 1) for i in range(0, 25, 5)])
    items, pages = _all_pages(sync.list_records, "Records", **ds.where, MaxResults=4)
    assert pages == 7
    assert sorted(r["Key"] for r in items) == [f"k{i:02}" for i in range(25)]
    order = [(r["SyncCount"], r["Key"]) for r in items]
    assert order == sorted(order)


def test_paging_while_data_changes_never_skips_a_change(sync: Any, pool_id: str,
                                                        identity_id: str) -> None:
    ds = Dataset(sync, pool_id, identity_id)
    ds.update([put(f"k{i}", "old") for i in range(6)])
    first = ds.list(0, MaxResults=3)
    started_at = first["DatasetSyncCount"]
    # Another device changes a key already paged past, and one not yet reached.
    paged = first["Records"][0]["Key"]
    ds.update([put(paged, "new", 1), put("k5", "new", 1)])
    rest = sync.list_records(**ds.where, LastSyncCount=0, MaxResults=3,
                             NextToken=first["NextToken"])
    assert rest["DatasetSyncCount"] == started_at  # the count the listing started from
    # The client stores started_at; its next sync fetches both changes.
    delta = {r["Key"]: r["Value"] for r in ds.list(started_at)["Records"]}
    assert delta == {paged: "new", "k5": "new"}


def test_next_token_is_tamper_proof_and_bound_to_its_query(sync: Any, pool_id: str,
                                                            identity_id: str) -> None:
    ds = Dataset(sync, pool_id, identity_id)
    ds.update([put(f"k{i}", "v") for i in range(5)])
    token = ds.list(0, MaxResults=2)["NextToken"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "garbage", "x" * 500):
        with pytest.raises(ClientError) as excinfo:
            sync.list_records(**ds.where, MaxResults=2, NextToken=bad)
        assert error_code(excinfo) == ("InvalidParameterException", 400)
    other = Dataset(sync, pool_id, new_identity_id())
    other.update([put("a", "b")])
    with pytest.raises(ClientError) as excinfo:
        sync.list_records(**other.where, NextToken=token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as excinfo:  # same dataset, other lastSyncCount
        sync.list_records(**ds.where, LastSyncCount=1, NextToken=token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)


def test_list_datasets_pagination(sync: Any, pool_id: str, identity_id: str) -> None:
    names = [f"set{i}" for i in range(7)]
    for name in names:
        Dataset(sync, pool_id, identity_id, name).update([put("k", "v")])
    items, pages = _all_pages(sync.list_datasets, "Datasets", IdentityPoolId=pool_id,
                              IdentityId=identity_id, MaxResults=3)
    assert [d["DatasetName"] for d in items] == names
    assert pages == 3
    page = sync.list_datasets(IdentityPoolId=pool_id, IdentityId=identity_id, MaxResults=3)
    with pytest.raises(ClientError) as excinfo:
        sync.list_datasets(IdentityPoolId=pool_id, IdentityId=new_identity_id(),
                           NextToken=page["NextToken"])
    assert error_code(excinfo) == ("InvalidParameterException", 400)


def test_list_identity_pool_usage_pagination(server: Any) -> None:
    import json

    account = json.loads(server.cli("accounts", "create", "--json"))
    created = [
        json.loads(server.cli("pools", "create", "--name", f"p{i}", "--account",
                              account["AccountId"], "--json"))["IdentityPoolId"]
        for i in range(3)
    ]
    from tests.server import Credentials

    client = server.client(credentials=Credentials(account["AccessKeyId"],
                                                   account["SecretAccessKey"]))
    items, pages = _all_pages(client.list_identity_pool_usage, "IdentityPoolUsages",
                              MaxResults=2)
    assert sorted(u["IdentityPoolId"] for u in items) == sorted(created)
    assert pages == 2
    first = client.list_identity_pool_usage(MaxResults=2)
    assert first["MaxResults"] == 2 and first["Count"] == 2


def test_update_requires_a_valid_session_token_for_that_dataset(sync: Any, pool_id: str,
                                                                 identity_id: str) -> None:
    ds = Dataset(sync, pool_id, identity_id, "one")
    other = Dataset(sync, pool_id, identity_id, "two")
    wrong_dataset_token = other.list()["SyncSessionToken"]
    wrong_identity_token = Dataset(sync, pool_id, new_identity_id(), "one").list()[
        "SyncSessionToken"]
    good = ds.list()["SyncSessionToken"]
    for bad in (wrong_dataset_token, wrong_identity_token, good[:-2] + "zz", "nonsense"):
        with pytest.raises(ClientError) as excinfo:
            ds.update([put("k", "v")], token=bad)
        assert error_code(excinfo) == ("InvalidParameterException", 400)
    assert ds.list()["DatasetExists"] is False
    assert ds.update([put("k", "v")], token=good)[0]["SyncCount"] == 1


def test_session_tokens_expire(make_server: Any) -> None:
    srv = make_server(env={"COGSYNC_SESSION_TTL": "1"})
    client = srv.client()
    ds = Dataset(client, srv.pool_id, new_identity_id())
    token = ds.list()["SyncSessionToken"]
    import time

    time.sleep(1.5)
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("k", "v")], token=token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    assert "expired" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        client.list_records(**ds.where, SyncSessionToken=token)


def test_tokens_from_another_server_key_are_rejected(make_server: Any) -> None:
    one = make_server(env={"COGSYNC_SECRET_KEY": "11" * 32})
    two = make_server(env={"COGSYNC_SECRET_KEY": "22" * 32})
    token = Dataset(one.client(), one.pool_id, "us-east-1:0000-aa").list()["SyncSessionToken"]
    ds = Dataset(two.client(), two.pool_id, "us-east-1:0000-aa")
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("k", "v")], token=token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
