"""Every read is a snapshot while writers sync (see tests/snapshot_history.py): full and
delta ListRecords, paged listings, DescribeDataset, ListDatasets and DescribeIdentityUsage,
on the test backend; on PostgreSQL through three replicas over one database.

Bounded and seeded in the suite: ``COGSYNC_HISTORY_SECONDS`` (default 20) and
``COGSYNC_HISTORY_SEED`` (default 1) set the run, for example
``COGSYNC_HISTORY_SECONDS=300 python -m pytest tests/test_snapshot_history.py -s`` for a
long one. The figures are printed.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests import snapshot_history
from tests.server import ServerProcess, backend, new_identity_id
from tests.test_scale_out import replicas  # noqa: F401 (a fixture)

SECONDS = float(os.environ.get("COGSYNC_HISTORY_SECONDS", "20"))
SEED = int(os.environ.get("COGSYNC_HISTORY_SEED", "1"))


def test_every_read_is_a_snapshot_while_writers_sync(request: pytest.FixtureRequest,
                                                     make_server: Any) -> None:
    postgres = backend() == "postgresql"
    servers: list[ServerProcess] = (
        request.getfixturevalue("replicas") if postgres else [make_server()])
    clients = [server.client() for server in servers for _ in range(4)]
    history = snapshot_history.run(lambda n: clients[n % len(clients)], servers[0].pool_id,
                                   new_identity_id(), ["shared-a", "shared-b"], SECONDS, SEED)
    reads = snapshot_history.check(history)
    print(f"\nsnapshot history (seed {SEED}, {SECONDS:.0f} s, {len(servers)} server(s)): "
          f"{len(history.writes)} writes, {history.conflicts} conflicts, "
          f"{sum(reads.values())} reads checked {dict(sorted(reads.items()))}, "
          "0 snapshot violations")
    assert history.conflicts > 0 and len(history.writes) > 10  # it did contend
    assert reads["full"] > 10 and all(reads[kind] > 0 for kind in (
        "delta", "paged", "describe", "datasets", "usage")), reads
