"""Several worker processes on one port share one database correctly."""

from __future__ import annotations

import os
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.server import new_identity_id, wait_until
from tests.test_sync_semantics import Dataset, put


def test_two_workers_serve_one_database(make_server: Any) -> None:
    srv = make_server("--workers", "2")
    identity = new_identity_id()

    def writer(n: int) -> list[int]:
        ds = Dataset(srv.client(), srv.pool_id, identity, f"set{n}")
        return [ds.update([put(f"k{i}", "v")])[0]["SyncCount"] for i in range(10)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(writer, range(4)))
    assert results == [list(range(1, 11))] * 4
    client = srv.client()
    for n in range(4):
        assert Dataset(client, srv.pool_id, identity, f"set{n}").list()["DatasetSyncCount"] == 10


def test_workers_do_not_outlive_a_killed_supervisor(make_server: Any) -> None:
    srv = make_server("--workers", "2")
    srv.client().list_datasets(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id())
    assert srv.process is not None
    os.kill(srv.process.pid, signal.SIGKILL)  # the supervisor only, not its group
    srv.process.wait(10)

    def port_closed() -> bool:
        try:
            urllib.request.urlopen(srv.endpoint + "/_cogsync/health", timeout=1)
        except OSError:
            return True
        return False

    assert wait_until(port_closed, timeout=10)
