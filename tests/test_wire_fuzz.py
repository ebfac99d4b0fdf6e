"""The model-driven fuzz of both services (see tests/wire_fuzz.py), on the test backend.

Bounded and seeded in the suite; ``COGSYNC_FUZZ_EXAMPLES`` (default 2000) and
``COGSYNC_FUZZ_SEED`` (default 10) set the run, for example
``COGSYNC_FUZZ_EXAMPLES=100000 python -m pytest tests/test_wire_fuzz.py -s`` for a long one
(``COGSYNC_TEST_BACKEND=postgresql`` for PostgreSQL). A long run goes in rounds of
``COGSYNC_FUZZ_ROUND`` (default 5000) requests, each on a new server and database (the
snapshot of a database that grows all along would cost more and more). The figures are
printed.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.identity_helpers import (
    DEVELOPER_PROVIDER,
    make_pool,
    sync_client_for,
    unauthenticated_credentials,
)
from tests.server import ServerProcess
from tests.wire_fuzz import Caller, Fuzzer, Prepared, Tally, World

EXAMPLES = int(os.environ.get("COGSYNC_FUZZ_EXAMPLES", "2000"))
SEED = int(os.environ.get("COGSYNC_FUZZ_SEED", "10"))
ROUND = int(os.environ.get("COGSYNC_FUZZ_ROUND", "5000"))


def _fuzz_server(folder: Path) -> ServerProcess:
    # A Lambda endpoint nobody listens on: a Sync Trigger the fuzz sets fails at once.
    return ServerProcess(folder, ["--lambda-endpoint", "http://127.0.0.1:9"]).start()


def _database_url(server: ServerProcess, folder: Path) -> str:
    if server.database:
        return server.database.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{folder / 'cogsync.db'}"


def _world(server: ServerProcess) -> World:
    assert server.credentials is not None
    pool_id = make_pool(server)
    spares = [make_pool(server, push=False) for _ in range(3)]
    other = json.loads(server.cli("accounts", "create", "--json"))
    stranger = Caller("another account", other["AccessKeyId"], other["SecretAccessKey"])
    other_pool = json.loads(server.cli("pools", "create", "--name", "theirs", "--json",
                                       "--account", other["AccountId"]))["IdentityPoolId"]
    identity_id, creds = unauthenticated_credentials(server, pool_id)
    identity = Caller("identity", creds["AccessKeyId"], creds["SecretKey"],
                      creds["SessionToken"])
    phone = sync_client_for(server, creds)
    device = phone.register_device(IdentityPoolId=pool_id, IdentityId=identity_id,
                                   Platform="GCM", Token="fuzz-" + uuid.uuid4().hex)["DeviceId"]
    where = {"IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": "data"}
    token = phone.list_records(**where)["SyncSessionToken"]
    phone.update_records(**where, SyncSessionToken=token, RecordPatches=[
        {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}])
    developer = Caller("developer", server.credentials.access_key_id,
                       server.credentials.secret_access_key)
    return World(pool_id, other_pool, spares, identity_id, developer, stranger, identity,
                 device, DEVELOPER_PROVIDER, [phone.list_records(**where)["SyncSessionToken"]])


def test_fuzzed_requests_get_4xx_in_the_aws_shape_and_change_nothing(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    tally = Tally()
    for number, start in enumerate(range(0, EXAMPLES, ROUND)):
        server = _fuzz_server(tmp_path_factory.mktemp(f"fuzz{number}"))
        try:
            fuzzer = Fuzzer(server.endpoint, _world(server),
                            _database_url(server, server.data_dir), SEED + number)
            tally.add(fuzzer.run(min(ROUND, EXAMPLES - start), sweep=number == 0))
            assert fuzzer.send(Prepared("GET", "/_cogsync/health", {}, b""))[0] == 200
            if EXAMPLES > ROUND:  # a long run tells how far it got
                print(f"\nround {number + 1}: {tally.summary()}", flush=True)
        finally:
            server.stop()
    print(f"\nfuzz (seed {SEED}): {tally.summary()}")
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert len(tally.operations) == 40, sorted(tally.operations)  # every one was tried
    assert tally.statuses[200] > EXAMPLES // 20, tally.statuses  # and many got through
