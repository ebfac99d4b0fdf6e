"""A full disk, for real: SQLite on a small tmpfs. Writes are refused with a 503 that says
what happened (and the log tells the operator), nothing is half-written, reads go on,
writes resume once space is freed, and a stop whose writes fail still closes the store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import ServerProcess, independent_of_backend, new_identity_id, wait_until

pytestmark = independent_of_backend  # SQLite on its own small disk, whatever the backend

VALUE = "v" * 20_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI and the development machines are)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free."""
    stats = os.statvfs(disk)
    filler = disk / f"filler-{uuid.uuid4().hex[:6]}"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


def _records(listing: dict[str, Any]) -> tuple[int, list[tuple[str, int]]]:
    return listing["DatasetSyncCount"], sorted((r["Key"], r["SyncCount"])
                                               for r in listing["Records"])


def _write_until_refused(client: Any, pool_id: str, value: str = VALUE, patches: int = 10,
                         attempts: int = 300) -> tuple[dict[str, str], Any, ClientError]:
    identity = new_identity_id()
    for n in range(attempts):
        where = {"IdentityPoolId": pool_id, "IdentityId": identity,
                 "DatasetName": f"set{n % 19}"}
        listing = client.list_records(**where)
        try:
            client.update_records(**where, SyncSessionToken=listing["SyncSessionToken"],
                                  RecordPatches=[{"Op": "replace", "Key": f"k{n}-{j}",
                                                  "Value": value, "SyncCount": 0}
                                                 for j in range(patches)])
        except ClientError as error:
            return where, _records(listing), error
        if n % 19 == 18:
            identity = new_identity_id()
    raise AssertionError("the disk never filled")


def test_full_disk_is_a_clear_503_and_changes_nothing(small_disk: Path) -> None:
    server = ServerProcess(small_disk, database=f"sqlite:///{small_disk}/cogsync.db").start()
    try:
        client = server.client()
        kept = {"IdentityPoolId": server.pool_id, "IdentityId": new_identity_id(),
                "DatasetName": "kept"}
        token = client.list_records(**kept)["SyncSessionToken"]
        client.update_records(**kept, SyncSessionToken=token, RecordPatches=[
            {"Op": "replace", "Key": "k", "Value": "before", "SyncCount": 0}])
        filler = _fill(small_disk, leave=600_000)

        where, before, error = _write_until_refused(client, server.pool_id)
        response = error.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503, response
        assert response["Error"]["Code"] == "ServiceUnavailableException"
        assert "disk is full" in response["Error"]["Message"]
        # The log line is read from the server's output by another thread: wait for it.
        assert wait_until(lambda: any("STORAGE FULL" in line for line in server.output))
        assert _records(client.list_records(**where)) == before  # nothing half-written
        # Reads go on.
        assert [r["Value"] for r in client.list_records(**kept)["Records"]] == ["before"]

        filler.unlink()
        token = client.list_records(**kept)["SyncSessionToken"]
        done = client.update_records(**kept, SyncSessionToken=token, RecordPatches=[
            {"Op": "replace", "Key": "k", "Value": "after", "SyncCount": 1}])
        assert [r["SyncCount"] for r in done["Records"]] == [2]
        assert _records(client.list_records(**where)) == before

        # A stop whose writes fail must still close the store. To make the last flush
        # fail for certain (a full disk may still have room in the write-ahead log), no
        # write past the first byte of a file is allowed to the process any more (a file
        # size limit: its writes fail with EFBIG, as on a full disk), with a sync session
        # count waiting to be flushed.
        client.list_records(**{**kept, "DatasetName": "pending-session"})
        assert server.process is not None
        subprocess.run(["prlimit", f"--pid={server.process.pid}", "--fsize=1:unlimited"],
                       check=True)
        server.stop()
        assert server.process.returncode == 0, "".join(server.output[-30:])
        log = "".join(server.output)
        assert "shutdown: could not flush the sync session counts" in log, log[-3000:]
        assert "could not close the store" not in log
    finally:
        server.kill()
    for filler in small_disk.glob("filler-*"):
        filler.unlink()
    database = sqlite3.connect(small_disk / "cogsync.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    database.close()
