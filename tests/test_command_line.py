"""The command line as a newcomer meets it: every mistake is one line and exit status 2,
nothing is created by a command that fails, and the admin commands manage keys,
accounts and pools."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from cogsync.config import OPTIONS
from tests.server import REGION, Credentials, ServerProcess, independent_of_backend


def run_cogsync(*args: str, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
    return subprocess.run([sys.executable, "-m", "cogsync", *args], capture_output=True,
                          text=True, timeout=60, env={**clean, **(env or {})}, cwd=cwd)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cogsync"), lines
    assert "Traceback" not in done.stderr + done.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])


BAD_SERVE_FLAGS = [
    (["--log-level", "loud"], {}, "--log-level"),
    (["--streams", "foo://bar"], {}, "--streams"),
    (["--push", "ftp://x"], {}, "--push"),
    (["--database", "notaurl"], {}, "--database"),
    (["--database", "mysql://u@h/db"], {}, "--database"),
    (["--database", "sqlite:///:memory:"], {}, "use --ephemeral"),
    (["--ephemeral"], {}, "--data-dir and --ephemeral conflict"),
    ([], {"COGSYNC_EPHEMERAL": "1"}, "--data-dir and --ephemeral conflict"),
    (["--test-controls", "--workers", "2"], {}, "--test-controls needs --workers 1"),
    (["--lambda-endpoint", "lambda.local"], {}, "--lambda-endpoint"),
    (["--data-dir", "/etc/passwd"], {}, "--data-dir"),
    (["--region", "us_east_1!"], {}, "--region"),
    (["--port", "99999"], {}, "--port"),
    (["--port", "-1"], {}, ""),
    (["--workers", "0"], {}, "--workers"),
    (["--sqlite-synchronous", "sometimes"], {}, "--sqlite-synchronous"),
    (["--access-key-id", "AKCSFIXEDKEY00000000"], {}, "--secret-access-key"),
    (["--pool-id", "eu-west-1:0000"], {}, "region"),
    (["--pool-id", "not a pool"], {}, "--pool-id"),
    (["--no-such-flag"], {}, "unrecognized"),
    ([], {"COGSYNC_PORT": "abc"}, "COGSYNC_PORT"),
    ([], {"COGSYNC_OPEN": "maybe"}, "COGSYNC_OPEN"),
    ([], {"COGSYNC_MAX_DATASETS": "many"}, "COGSYNC_MAX_DATASETS"),
    ([], {"COGSYNC_SESSION_TTL": "-5"}, "COGSYNC_SESSION_TTL"),
    ([], {"COGSYNC_RATE_LIMIT_POOL": "fast"}, "COGSYNC_RATE_LIMIT_POOL"),
    ([], {"COGSYNC_SECRET_KEY": "short"}, "COGSYNC_SECRET_KEY"),
    ([], {"COGSYNC_OIDC_PROVIDERS": "[{\"nope\": 1}]"}, "COGSYNC_OIDC_PROVIDERS"),
    ([], {"COGSYNC_REGION": "EU"}, "COGSYNC_REGION"),
    (["--database", "postgresql://nobody@127.0.0.1:1/none"], {}, "cannot use PostgreSQL"),
]


@independent_of_backend
@pytest.mark.parametrize(("flags", "variables", "named"), BAD_SERVE_FLAGS)
def test_a_bad_setting_is_one_line_and_creates_nothing(
    tmp_path: Path, flags: list[str], variables: dict[str, str], named: str
) -> None:
    data = tmp_path / "data"
    port = [] if "COGSYNC_PORT" in variables else ["--port", "0"]  # a flag would win
    done = run_cogsync("serve", "--data-dir", str(data), *port, *flags,
                       env=variables, cwd=tmp_path)
    assert_one_line_error(done, named)
    assert not data.exists() or not any(data.iterdir()), "a failed start left files behind"


@independent_of_backend
def test_a_busy_port_fails_before_anything_is_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cogsync("serve", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert_one_line_error(done, f"port {port}", "in use")
    assert not (tmp_path / "data" / "cogsync.db").exists()


@independent_of_backend
def test_admin_commands_refuse_a_missing_database(tmp_path: Path) -> None:
    for command in (["keys", "create"], ["keys", "list"], ["pools", "list"],
                    ["accounts", "list"], ["outbox", "list"]):
        done = run_cogsync(*command, cwd=tmp_path)  # the default ./.cogsync: not there
        assert_one_line_error(done, "no cogsync database", "--init")
    assert not (tmp_path / ".cogsync").exists()
    made = run_cogsync("keys", "create", "--json", "--init", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)) == {"AccessKeyId", "SecretAccessKey", "AccountId"}
    assert (tmp_path / ".cogsync" / "cogsync.db").exists()


@independent_of_backend
def test_version_and_help_name_every_variable() -> None:
    from cogsync import __version__

    version = run_cogsync("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"cogsync {__version__}"
    helps = {
        command: run_cogsync(*command.split(), "--help").stdout
        for command in ("serve", "keys create", "pools create", "outbox list")
    }
    flat = {command: " ".join(text.split()) for command, text in helps.items()}
    for option in OPTIONS:
        if option.flag is None:
            continue
        assert option.flag in flat["serve"], option.flag
        assert option.variable in flat["serve"], option.variable
    for text in [run_cogsync("--help").stdout, *helps.values()]:
        assert "``" not in text and ":class:" not in text  # no markup


def test_keys_are_listed_disabled_enabled_and_deleted(server: ServerProcess,
                                                     pool_id: str) -> None:
    made = json.loads(server.cli("keys", "create", "--json"))
    key_id = made["AccessKeyId"]
    listed = {k["AccessKeyId"]: k for k in json.loads(server.cli("keys", "list", "--json"))}
    assert listed[key_id]["Enabled"] is True and listed[key_id]["LastUsedAt"] is None
    assert listed[key_id]["AccountId"] == made["AccountId"]
    assert "SecretAccessKey" not in listed[key_id]

    disabled = json.loads(server.cli("keys", "disable", key_id, "--json"))
    assert disabled["Enabled"] is False
    client = server.client(credentials=Credentials(key_id, made["SecretAccessKey"]))
    with pytest.raises(ClientError) as refused:
        client.describe_identity_pool_usage(IdentityPoolId=pool_id)
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"

    second = json.loads(server.cli("keys", "create", "--json"))
    server.cli("keys", "disable", second["AccessKeyId"])
    assert json.loads(server.cli("keys", "enable", second["AccessKeyId"], "--json"))["Enabled"]
    other = server.client(credentials=Credentials(second["AccessKeyId"],
                                                  second["SecretAccessKey"]))
    other.describe_identity_pool_usage(IdentityPoolId=pool_id)
    used = {k["AccessKeyId"]: k for k in json.loads(server.cli("keys", "list", "--json"))}
    assert used[second["AccessKeyId"]]["LastUsedAt"] is not None

    shown = json.loads(server.cli("keys", "show", second["AccessKeyId"], "--json"))
    assert shown["SecretAccessKey"] == second["SecretAccessKey"]
    server.cli("keys", "delete", key_id)
    after = {k["AccessKeyId"] for k in json.loads(server.cli("keys", "list", "--json"))}
    assert key_id not in after and second["AccessKeyId"] in after
    with pytest.raises(RuntimeError, match="no developer key"):
        server.cli("keys", "enable", key_id)


def test_accounts_and_pools_are_listed(server: ServerProcess) -> None:
    account = json.loads(server.cli("accounts", "create", "--json"))
    listed = {a["AccountId"]: a for a in json.loads(server.cli("accounts", "list", "--json"))}
    assert listed[account["AccountId"]]["Keys"] == 1
    assert listed[account["AccountId"]]["Pools"] == 0

    made = json.loads(server.cli(
        "pools", "create", "--name", "mobile app", "--account", account["AccountId"],
        "--allow-unauthenticated", "--developer-provider", "login.example.com", "--json"))
    pools = json.loads(server.cli("pools", "list", "--account", account["AccountId"],
                                  "--json"))
    assert [p["IdentityPoolId"] for p in pools] == [made["IdentityPoolId"]]
    assert pools[0]["AllowUnauthenticatedIdentities"] is True
    assert pools[0]["DeveloperProviderName"] == "login.example.com"
    identity = server.client(
        "cognito-identity",
        credentials=Credentials(account["AccessKeyId"], account["SecretAccessKey"]),
    )
    described = identity.describe_identity_pool(IdentityPoolId=made["IdentityPoolId"])
    assert described["IdentityPoolName"] == "mobile app"
    assert described["AllowUnauthenticatedIdentities"] is True
    assert described["DeveloperProviderName"] == "login.example.com"
    text = server.cli("accounts", "list")
    assert account["AccountId"] in text and "AccountId" in text.splitlines()[0]


@pytest.mark.parametrize("name", ["bad/name", "x" * 129, ""])
def test_pools_create_refuses_what_the_api_refuses(server: ServerProcess, name: str) -> None:
    with pytest.raises(RuntimeError) as refused:
        server.cli("pools", "create", "--name", name)
    message = str(refused.value).strip()
    assert len(message.splitlines()) == 1 and "identitypoolname" in message.lower()


def test_outbox_list_says_when_it_is_empty(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    assert srv.cli("outbox", "list").strip() == "no pending entries"
    assert srv.cli("outbox", "list", "--dead").strip() == "no dead entries"
    assert json.loads(srv.cli("outbox", "list", "--json")) == []


def _unsigned_identity(endpoint: str) -> Any:
    return boto3.client("cognito-identity", endpoint_url=endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED,
                                      retries={"total_max_attempts": 1}))


def test_the_first_pool_allows_unauthenticated_identities(server: ServerProcess) -> None:
    identity = _unsigned_identity(server.endpoint)
    identity_id = identity.get_id(IdentityPoolId=server.pool_id)["IdentityId"]
    creds = identity.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    sync = boto3.client("cognito-sync", endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretKey"],
                        aws_session_token=creds["SessionToken"])
    listing = sync.list_records(IdentityPoolId=server.pool_id, IdentityId=identity_id,
                                DatasetName="first")
    assert listing["Count"] == 0


def test_bootstrap_credentials_are_fixed_on_a_new_database_only(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    fixed = {
        "COGSYNC_BOOTSTRAP_ACCESS_KEY_ID": "AKCSFIXEDFORTESTS000",
        "COGSYNC_BOOTSTRAP_SECRET_ACCESS_KEY": "fixed-secret-for-tests",
        "COGSYNC_BOOTSTRAP_POOL_ID": "us-east-1:00000000-0000-4000-8000-000000000001",
    }
    srv = make_server(data_dir=tmp_path / "data", env=fixed)
    assert srv.credentials == Credentials("AKCSFIXEDFORTESTS000", "fixed-secret-for-tests")
    assert srv.pool_id == fixed["COGSYNC_BOOTSTRAP_POOL_ID"]
    usage = srv.client().describe_identity_pool_usage(IdentityPoolId=srv.pool_id)
    assert usage["IdentityPoolUsage"]["IdentityPoolId"] == srv.pool_id

    srv.kill()
    srv.env = {**fixed, "COGSYNC_BOOTSTRAP_ACCESS_KEY_ID": "AKCSOTHERKEY00000000"}
    srv.start()  # an existing database: the variables change nothing
    keys = json.loads(srv.cli("keys", "list", "--json"))
    assert [k["AccessKeyId"] for k in keys] == ["AKCSFIXEDFORTESTS000"]
    flags = make_server("--access-key-id", "AKCSFLAGGEDKEY000000", "--secret-access-key",
                        "flagged-secret", data_dir=tmp_path / "flags")
    assert flags.credentials == Credentials("AKCSFLAGGEDKEY000000", "flagged-secret")


def test_open_mode_accepts_dummy_credentials_and_keeps_identities_apart(
    make_server: Callable[..., ServerProcess]
) -> None:
    srv = make_server("--open")
    dummy = srv.client(credentials=Credentials("testing", "testing"))
    where = dict(IdentityPoolId=srv.pool_id, IdentityId=f"{REGION}:0000-1111",
                 DatasetName="open")
    token = dummy.list_records(**where)["SyncSessionToken"]
    dummy.update_records(**where, SyncSessionToken=token, RecordPatches=[
        {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}])
    assert dummy.list_records(**where)["Records"][0]["Value"] == "v"

    identity = _unsigned_identity(srv.endpoint)
    mine = identity.get_id(IdentityPoolId=srv.pool_id)["IdentityId"]
    creds = identity.get_credentials_for_identity(IdentityId=mine)["Credentials"]
    as_identity = boto3.client(
        "cognito-sync", endpoint_url=srv.endpoint, region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key="not even the secret",
        aws_session_token=creds["SessionToken"], config=Config(retries={"total_max_attempts": 1}))
    as_identity.list_records(IdentityPoolId=srv.pool_id, IdentityId=mine, DatasetName="d")
    with pytest.raises(ClientError) as refused:  # the credentials still name who calls
        as_identity.list_records(**where)
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_health_and_readiness(make_server: Callable[..., ServerProcess]) -> None:
    import urllib.error
    import urllib.request

    srv = make_server()

    def call(path: str, method: str = "GET") -> tuple[int, bytes]:
        request = urllib.request.Request(srv.endpoint + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    assert call("/_cogsync/health") == (200, b'{"status":"ok"}')
    assert call("/_cogsync/health", "HEAD") == (200, b"")
    assert call("/_cogsync/health", "POST")[0] == 405
    assert call("/_cogsync/ready", "DELETE")[0] == 405
    assert call("/_cogsync/ready") == (200, b'{"status":"ready"}')

    original = srv.cli("keys", "list")  # the database answers the admin side too
    assert original
    _set_revision(srv, "0001")
    status, body = call("/_cogsync/ready")
    assert status == 503 and b"schema" in body
    assert call("/_cogsync/health")[0] == 200  # alive, just not ready
    _drop_revision_table(srv)
    status, body = call("/_cogsync/ready")
    assert status == 503 and b"does not answer" in body


def _database(srv: ServerProcess) -> Any:
    from sqlalchemy import create_engine

    url = srv.database or f"sqlite:///{srv.data_dir / 'cogsync.db'}"
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _set_revision(srv: ServerProcess, revision: str) -> None:
    from sqlalchemy import text

    engine = _database(srv)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _drop_revision_table(srv: ServerProcess) -> None:
    from sqlalchemy import text

    engine = _database(srv)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


@independent_of_backend
def test_a_sqlite_database_url_is_named_as_a_sqlite_file(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
    database = tmp_path / "elsewhere" / "sync.db"
    database.parent.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "cogsync", "serve", "--print-json", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--database", f"sqlite:///{database}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.kill()
        process.communicate()
    assert json.loads(line)["Database"] == f"SQLite file {database}", line


@independent_of_backend
@pytest.mark.parametrize("args, env, secret", [
    (["--metrics-token", "tiny-secret"], {}, "tiny-secret"),
    ([], {"COGSYNC_SECRET_KEY": "short-secret-key"}, "short-secret-key"),
    (["--access-key-id", "AKCSFIXEDKEY00000000", "--secret-access-key", "s3cr!t"], {}, "s3cr!t"),
])
def test_a_refused_secret_is_not_echoed(tmp_path: Path, args: list[str], env: dict[str, str],
                                        secret: str) -> None:
    done = run_cogsync("serve", "--data-dir", str(tmp_path / "d"), *args, env=env)
    assert_one_line_error(done)
    assert secret not in done.stderr + done.stdout, done.stderr
