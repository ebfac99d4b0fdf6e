"""One server, many connections: concurrent read-modify-write syncs lose nothing, and
acknowledged writes survive kill -9 in the middle of a write storm."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests import history
from tests.server import new_identity_id
from tests.test_sync_semantics import put


def test_concurrent_syncs_on_shared_datasets(server: Any) -> None:
    history.run_and_check([server.client() for _ in range(4)], server.pool_id,
                          new_identity_id(), ["together", "also-together"], writers=12,
                          cycles=10)


def test_concurrent_first_writes_create_one_dataset(server: Any) -> None:
    identity = new_identity_id()
    where = dict(IdentityPoolId=server.pool_id, IdentityId=identity, DatasetName="born")
    outcomes: list[int] = []

    def first_write(n: int) -> None:
        client = server.client()
        token = client.list_records(**where)["SyncSessionToken"]
        written = client.update_records(**where, SyncSessionToken=token,
                                        RecordPatches=[put(f"k{n}", "v")])
        outcomes.append(written["Records"][0]["SyncCount"])

    threads = [threading.Thread(target=first_write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == list(range(1, 9))
    listed = server.client().list_datasets(IdentityPoolId=server.pool_id, IdentityId=identity)
    assert [d["DatasetName"] for d in listed["Datasets"]] == ["born"]


def test_kill_9_during_a_write_storm(make_server: Any) -> None:
    srv = make_server()
    identity = new_identity_id()

    def kill_three_times() -> None:
        for _ in range(3):
            time.sleep(0.8)
            srv.restart()  # kill -9, then start again on the same data

    storm = history.write_storm(lambda n, i: srv.client(), srv.pool_id, identity,
                                kill_three_times)
    assert len(storm.acked) > 20
    history.check_storm(storm, srv.client(), srv.pool_id, identity)
