"""The ``cogsync`` command-line contract: keys and pools made by the admin commands work
at once against a running server; start-up messages; secrets at rest."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import Credentials, ServerProcess, new_identity_id

POOL_ID = re.compile(r"^us-east-1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _sqlite_server(data_dir: Path) -> ServerProcess:
    """A private server forced onto SQLite, whatever backend the suite runs on."""
    return ServerProcess(data_dir, database=f"sqlite:///{(data_dir / 'cogsync.db').resolve()}")


def test_keys_create_prints_a_key_that_works_at_once(server: ServerProcess,
                                                      pool_id: str) -> None:
    created = json.loads(server.cli("keys", "create", "--json"))
    assert set(created) == {"AccessKeyId", "SecretAccessKey", "AccountId"}
    assert created["AccessKeyId"] != server.credentials.access_key_id  # type: ignore[union-attr]
    # Never seen by the running server, so not in its cache of unknown keys: works now.
    client = server.client(credentials=Credentials(created["AccessKeyId"],
                                                   created["SecretAccessKey"]))
    usage = client.describe_identity_pool_usage(IdentityPoolId=pool_id)["IdentityPoolUsage"]
    assert usage["IdentityPoolId"] == pool_id  # same account as the bootstrap key
    identity = new_identity_id()
    token = client.list_records(IdentityPoolId=pool_id, IdentityId=identity,
                                DatasetName="admin")["SyncSessionToken"]
    written = client.update_records(
        IdentityPoolId=pool_id, IdentityId=identity, DatasetName="admin",
        SyncSessionToken=token,
        RecordPatches=[{"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}])
    assert [(r["Key"], r["SyncCount"]) for r in written["Records"]] == [("k", 1)]

    wrong = server.client(credentials=Credentials(created["AccessKeyId"], "not-the-secret"))
    with pytest.raises(ClientError) as refused:
        wrong.describe_identity_pool_usage(IdentityPoolId=pool_id)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_pools_create_prints_a_usable_pool(server: ServerProcess, sync: Any) -> None:
    created = json.loads(server.cli("pools", "create", "--name", "admin-pool", "--json"))
    pool = created["IdentityPoolId"]
    assert POOL_ID.match(pool), pool

    usage = sync.describe_identity_pool_usage(IdentityPoolId=pool)["IdentityPoolUsage"]
    assert usage["IdentityPoolId"] == pool
    assert usage["DataStorage"] == 0
    assert usage["SyncSessionsCount"] == 0

    listed: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 60}
    for _ in range(100):  # the shared account may own many pools: follow NextToken
        page = sync.list_identity_pool_usage(**kwargs)
        listed += [u["IdentityPoolId"] for u in page["IdentityPoolUsages"]]
        if pool in listed or not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert pool in listed


def test_python_dash_m_help() -> None:
    done = subprocess.run([sys.executable, "-m", "cogsync", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "keys", "pools"):
        assert command in done.stdout
    serve = subprocess.run([sys.executable, "-m", "cogsync", "serve", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert serve.returncode == 0, serve.stderr
    for flag in ("--host", "--port", "--data-dir", "--database", "--region", "--open",
                 "--sqlite-synchronous"):
        assert flag in serve.stdout


def test_first_key_is_shown_until_used(make_server: Callable[..., ServerProcess],
                                       tmp_path: Path) -> None:
    first = make_server(data_dir=tmp_path / "data")
    assert first.credentials is not None and first.credentials.secret_access_key
    printed = "".join(first.output)
    assert "AWS_SECRET_ACCESS_KEY=" in printed and "IdentityPoolId=" in printed
    assert "unauthenticated identities allowed" in printed

    first.restart()  # kill -9 before any use: the same key and pool, shown again
    again = "".join(first.output)
    assert f"AWS_SECRET_ACCESS_KEY={first.credentials.secret_access_key}" in again
    assert f"IdentityPoolId={first.pool_id}" in again
    assert "has not been used yet" in again

    usage = first.client().describe_identity_pool_usage(IdentityPoolId=first.pool_id)
    assert usage["IdentityPoolUsage"]["IdentityPoolId"] == first.pool_id
    first.restart()  # used once: no secret printed any more
    later = "".join(first.output)
    assert "AWS_ACCESS_KEY_ID=" not in later
    assert "AWS_SECRET_ACCESS_KEY=" not in later
    assert "cogsync keys list" in later
    # The key made on the first start still works.
    usage = first.client().describe_identity_pool_usage(IdentityPoolId=first.pool_id)
    assert usage["IdentityPoolUsage"]["IdentityPoolId"] == first.pool_id


def test_master_key_file_is_private(server: ServerProcess) -> None:
    key_file = server.data_dir / "master.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", key_file.read_text().strip())


def test_database_holds_no_secret_in_plain_text(tmp_path: Path) -> None:
    proc = _sqlite_server(tmp_path / "data").start()
    try:
        assert proc.credentials is not None
        extra = json.loads(proc.cli("keys", "create", "--json"))
    finally:
        proc.kill()  # kill -9: whatever is in the WAL stays there, and is read below
    keys = [(proc.credentials.access_key_id, proc.credentials.secret_access_key),
            (extra["AccessKeyId"], extra["SecretAccessKey"])]
    files = [p for p in proc.data_dir.iterdir() if p.name.startswith("cogsync.db")]
    stored = b"".join(p.read_bytes() for p in files)
    for key_id, secret in keys:
        assert key_id.encode() in stored  # the right files were read
        assert secret.encode() not in stored


def test_database_without_its_master_key_reveals_no_usable_secret(tmp_path: Path) -> None:
    """A copy of the database under another master key: the secrets it holds cannot be
    opened. The server either refuses to start on it, or starts and refuses the keys."""
    original = _sqlite_server(tmp_path / "original").start()
    original.stop()
    assert original.credentials is not None
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for path in original.data_dir.iterdir():
        if path.name.startswith("cogsync.db"):
            (copy_dir / path.name).write_bytes(path.read_bytes())
    copy = _sqlite_server(copy_dir)
    try:
        copy.start()
    except RuntimeError:
        assert copy.process is not None and copy.process.returncode == 2
        assert original.credentials.secret_access_key not in "".join(copy.output)
        assert "master key" in "".join(copy.output)
        return
    try:
        assert "AWS_SECRET_ACCESS_KEY=" not in "".join(copy.output)  # the data was found
        client = copy.client(credentials=original.credentials)
        with pytest.raises(ClientError) as refused:
            client.describe_identity_pool_usage(IdentityPoolId=original.pool_id)
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    finally:
        copy.kill()
