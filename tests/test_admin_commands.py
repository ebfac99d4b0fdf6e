"""The operators' commands (``cogsync identities``, ``cogsync datasets``, ``cogsync outbox
retry --id``) on the database of a running server: what they show is what boto3 wrote,
and what they change (an erasure) is what boto3 clients see next."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import (
    make_pool,
    sync_client_for,
    unauthenticated_credentials,
)
from tests.peers import HttpReceiver
from tests.server import ServerProcess, new_identity_id, wait_until
from tests.test_push import Household
from tests.test_sync_semantics import Dataset, put, remove


def cli_json(server: ServerProcess, *args: str) -> Any:
    return json.loads(server.cli(*args, "--json"))


def run(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cogsync", *args, "--data-dir", str(server.data_dir)]
    if server.database:
        cmd += ["--database", server.database]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def household(server: ServerProcess) -> dict[str, Any]:
    """A pool with an identity made by GetId (two datasets, one record removed) and an id
    that only a developer wrote to."""
    pool = make_pool(server)
    identity, creds = unauthenticated_credentials(server, pool)
    client = sync_client_for(server, creds)
    notes = Dataset(client, pool, identity, "notes")
    notes.update([put("a", "alpha"), put("b", "beta")])
    notes.update([remove("b", 1)])
    Dataset(client, pool, identity, "settings").update([put("theme", "dark")])
    device = client.register_device(IdentityPoolId=pool, IdentityId=identity, Platform="GCM",
                                    Token="phone-token")["DeviceId"]
    client.subscribe_to_dataset(**notes.where, DeviceId=device)
    written_by_developer = new_identity_id()
    Dataset(server.client(), pool, written_by_developer, "x").update([put("k", "v")])
    return {"pool": pool, "identity": identity, "client": client, "notes": notes,
            "device": device, "other": written_by_developer}


def test_identities_list_and_search(server: ServerProcess, household: dict[str, Any]) -> None:
    pool = household["pool"]
    listed = cli_json(server, "identities", "list", "--pool", pool)
    by_id = {row["IdentityId"]: row for row in listed}
    assert set(by_id) == {household["identity"], household["other"]}
    assert by_id[household["identity"]]["Datasets"] == 2
    assert by_id[household["other"]] == {"IdentityId": household["other"], "Datasets": 1,
                                         "DataStorage": 2}
    part = household["other"].split(":")[1][:13]
    assert [r["IdentityId"] for r in cli_json(server, "identities", "list", "--pool", pool,
                                              "--search", part)] == [household["other"]]
    assert cli_json(server, "identities", "list", "--pool", pool, "--search", "%") == []
    text = server.cli("identities", "list", "--pool", pool)
    assert text.splitlines()[0].split() == ["IdentityId", "Datasets", "DataStorage"]


def test_identities_show_and_dataset_records(server: ServerProcess,
                                             household: dict[str, Any]) -> None:
    pool, identity = household["pool"], household["identity"]
    shown = cli_json(server, "identities", "show", "--pool", pool, "--identity", identity)
    assert shown["IdentityId"] == identity and shown["Devices"] == 1
    assert shown["Logins"] == []
    datasets = {d["DatasetName"]: d for d in shown["Datasets"]}
    described = household["notes"].describe()
    assert datasets["notes"]["SyncCount"] == described["NumRecords"] + 1 == 2
    assert datasets["notes"]["DataStorage"] == described["DataStorage"]

    records = cli_json(server, "datasets", "show", "--pool", pool, "--identity", identity,
                       "--dataset", "notes")
    assert [(r["Key"], r["Value"], r["SyncCount"]) for r in records["Records"]] == [
        ("a", "alpha", 1)]
    with_removed = cli_json(server, "datasets", "show", "--pool", pool, "--identity", identity,
                            "--dataset", "notes", "--removed")
    assert [(r["Key"], r["Value"], r["SyncCount"]) for r in with_removed["Records"]] == [
        ("a", "alpha", 1), ("b", None, 2)]
    found = cli_json(server, "datasets", "show", "--pool", pool, "--identity", identity,
                     "--dataset", "notes", "--search", "lph")
    assert [r["Key"] for r in found["Records"]] == ["a"]
    assert "alpha" in server.cli("datasets", "show", "--pool", pool, "--identity", identity,
                                 "--dataset", "notes")


def test_export_of_one_identity(server: ServerProcess, household: dict[str, Any],
                                tmp_path: Any) -> None:
    pool, identity = household["pool"], household["identity"]
    target = tmp_path / "me.json"
    server.cli("identities", "export", "--pool", pool, "--identity", identity,
               "--output", str(target))
    document = json.loads(target.read_text())
    assert document["format"] == "cogsync-identity-export" and document["version"] == 1
    assert document["identity"]["identity_id"] == identity
    names = {d["name"]: d for d in document["datasets"]}
    assert set(names) == {"notes", "settings"}
    assert [(r["key"], r["value"], r["sync_count"]) for r in names["notes"]["records"]] == [
        ("a", "alpha", 1), ("b", None, 2)]
    assert [d["device_id"] for d in document["devices"]] == [household["device"]]
    assert document["devices"][0]["token"] == "phone-token"
    assert [s["dataset_name"] for s in document["subscriptions"]] == ["notes"]
    assert cli_json(server, "identities", "export", "--pool", pool,
                    "--identity", identity)["datasets"] == document["datasets"]


def test_erasure_is_seen_by_the_identitys_next_sync(server: ServerProcess) -> None:
    pool = make_pool(server)
    identity, creds = unauthenticated_credentials(server, pool)
    client = sync_client_for(server, creds)
    notes = Dataset(client, pool, identity, "notes")
    notes.update([put("diary", "secret")])
    last = notes.list()["DatasetSyncCount"]
    assert last == 1

    erased = cli_json(server, "identities", "erase", "--pool", pool, "--identity", identity)
    assert erased == {"IdentityPoolId": pool, "IdentityId": identity,
                      "DatasetsDeleted": ["notes"], "DevicesForgotten": 0,
                      "IdentityForgotten": False}
    # The phone's next sync: told that the dataset was deleted after its copy, no records.
    after = notes.list(last)
    assert after["DatasetDeletedAfterRequestedSyncCount"] is True
    assert after.get("Records", []) == []
    assert client.list_datasets(IdentityPoolId=pool, IdentityId=identity)["Datasets"] == []
    assert "secret" not in json.dumps(cli_json(server, "identities", "export", "--pool", pool,
                                               "--identity", identity))
    # The identity still signs in; with --forget it is gone as DeleteIdentities leaves it.
    forgotten = cli_json(server, "identities", "erase", "--pool", pool, "--identity",
                         identity, "--forget")
    assert forgotten["IdentityForgotten"] is True and forgotten["DatasetsDeleted"] == []
    with pytest.raises(ClientError) as gone:
        server.client("cognito-identity").describe_identity(IdentityId=identity)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert notes.list(last)["DatasetDeletedAfterRequestedSyncCount"] is True


@pytest.mark.parametrize("args, says", [
    (("identities", "list", "--pool", "us-east-1:00000000-0000-0000-0000-000000000000"),
     "not found"),
    (("identities", "show", "--pool", "POOL", "--identity",
      "us-east-1:00000000-0000-0000-0000-000000000000"), "not found"),
    (("datasets", "show", "--pool", "POOL", "--identity",
      "us-east-1:00000000-0000-0000-0000-000000000000", "--dataset", "x"), "not found"),
    (("identities", "erase", "--pool", "POOL"), "--identity"),
    (("outbox", "retry", "--id", "one"), "invalid int value"),
])
def test_mistakes_are_one_line_and_exit_2(server: ServerProcess, args: tuple[str, ...],
                                          says: str) -> None:
    args = tuple(server.pool_id if a == "POOL" else a for a in args)
    done = run(server, *args)
    assert done.returncode == 2, done
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""


def test_dead_letters_retried_one_by_one(make_server: Any) -> None:
    failing = {"on": True}
    hook = HttpReceiver(lambda body: 500 if failing["on"] else 200).start()
    try:
        srv = make_server("--push", hook.url, env={"COGSYNC_OUTBOX_MAX_ATTEMPTS": "1",
                                                   "COGSYNC_OUTBOX_BACKOFF": "0.05"})
        home = Household(srv)
        home.write_from_phone("k", "1")
        home.write_from_phone("j", "2")
        dead = wait_until(lambda: len(cli_json(srv, "outbox", "list", "--dead")) == 2
                          and cli_json(srv, "outbox", "list", "--dead"))
        assert dead and all(d["Kind"] == "push" and "500" in d["LastError"] for d in dead)
        failing["on"] = False
        first = str(dead[0]["Id"])
        assert cli_json(srv, "outbox", "retry", "--id", first) == {"Requeued": 1}
        assert wait_until(lambda: len(hook.received) == 1)
        left = cli_json(srv, "outbox", "list", "--dead")
        assert [d["Id"] for d in left] == [dead[1]["Id"]]
        assert cli_json(srv, "outbox", "retry", "--id", first) == {"Requeued": 0}
    finally:
        hook.stop()
