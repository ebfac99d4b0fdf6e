"""The real AWS CLI (``aws cognito-sync ...``) against a running cogsync: every operation.

The CLI is a declared test dependency (``awscli`` in the ``test`` extra), so a missing
``aws`` fails the run instead of skipping it. No user configuration leaks in: the config
and credentials files point at /dev/null and every ``AWS_*`` variable is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server import REGION, ServerProcess, new_identity_id

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sync-trigger"
STREAM_ROLE = "arn:aws:iam::123456789012:role/cognito-streams"
PUSH_ROLE = "arn:aws:iam::123456789012:role/cognito-push"
PUSH_APP = "arn:aws:sns:us-east-1:123456789012:app/GCM/my-app"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, f"aws failed ({self.code}): {self.stderr}"
        return json.loads(self.stdout) if self.stdout.strip() else None


class Aws:
    """Runs ``aws <service> <command>`` against one server with one key (``aws
    cognito-sync`` unless told; ``unsigned`` adds ``--no-sign-request``)."""

    def __init__(self, executable: str, server: ServerProcess, service: str = "cognito-sync",
                 unsigned: bool = False):
        assert server.credentials is not None
        self.executable = executable
        self.service = service
        self.unsigned = ["--no-sign-request"] if unsigned else []
        self.endpoint = server.endpoint
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(
            AWS_ACCESS_KEY_ID=server.credentials.access_key_id,
            AWS_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )

    def run(self, command: str, *args: str) -> CliResult:
        cmd = [self.executable, self.service, command, *args, *self.unsigned,
               "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        return CliResult(done.returncode, done.stdout, done.stderr)

    def __call__(self, command: str, *args: str) -> Any:
        return self.run(command, *args).json()


@pytest.fixture(scope="module")
def aws(server: ServerProcess) -> Aws:
    return Aws(aws_executable(), server)


def aws_executable() -> str:
    executable = shutil.which("aws")
    if executable is None:
        pytest.fail("the AWS CLI ('aws') is a test dependency: pip install -e '.[test]'")
    return executable


@pytest.fixture(scope="module")
def cli_pool(server: ServerProcess) -> str:
    """A pool of its own (same account), so events and configuration set here touch no
    other test, and its usage counts only what this module writes."""
    return json.loads(server.cli("pools", "create", "--name", "awscli", "--json"))[
        "IdentityPoolId"
    ]


def _where(pool: str, identity: str, dataset: str) -> list[str]:
    return ["--identity-pool-id", pool, "--identity-id", identity, "--dataset-name", dataset]


# Tokens are URL-safe base64 and may begin with "-", which the CLI's argument parser would
# take for an option: always pass them as --option=value.
def _write(aws: Aws, pool: str, identity: str, dataset: str, patches: list[dict[str, Any]],
           *extra: str) -> Any:
    token = aws("list-records", *_where(pool, identity, dataset))["SyncSessionToken"]
    return aws("update-records", *_where(pool, identity, dataset),
               f"--sync-session-token={token}", "--record-patches", json.dumps(patches), *extra)


def test_list_update_describe_list_delete(aws: Aws, cli_pool: str) -> None:
    identity = new_identity_id()
    where = _where(cli_pool, identity, "settings")

    first = aws("list-records", *where)
    assert first["Records"] == []
    assert first["Count"] == 0
    assert first["DatasetSyncCount"] == 0
    assert first["DatasetExists"] is False
    assert first["SyncSessionToken"]

    patches = [
        {"Op": "replace", "Key": "theme", "Value": "dark", "SyncCount": 0,
         "DeviceLastModifiedDate": 1700000000},
        {"Op": "replace", "Key": "lang", "Value": "fr", "SyncCount": 0},
    ]
    updated = aws("update-records", *where, f"--sync-session-token={first['SyncSessionToken']}",
                  "--device-id", "phone-1", "--record-patches", json.dumps(patches))
    records = {r["Key"]: r for r in updated["Records"]}
    assert set(records) == {"theme", "lang"}
    assert records["theme"]["Value"] == "dark"
    assert records["theme"]["SyncCount"] == 1
    assert records["theme"]["LastModifiedBy"] == "phone-1"
    assert records["theme"]["DeviceLastModifiedDate"] == 1700000000
    assert records["lang"]["Value"] == "fr"

    listed = aws("list-records", *where)
    assert listed["DatasetExists"] is True
    assert listed["DatasetSyncCount"] == 1
    assert sorted((r["Key"], r["Value"], r["SyncCount"]) for r in listed["Records"]) == [
        ("lang", "fr", 1), ("theme", "dark", 1)]
    assert aws("list-records", *where, "--last-sync-count", "1")["Records"] == []

    # A stale SyncCount is a conflict: the CLI exits non-zero with the AWS error code.
    stale = aws.run("update-records", *where,
                    f"--sync-session-token={listed['SyncSessionToken']}", "--record-patches",
                    json.dumps([{"Op": "replace", "Key": "theme", "Value": "x", "SyncCount": 0}]))
    assert stale.code != 0
    assert "ResourceConflictException" in stale.stderr

    dataset = aws("describe-dataset", *where)["Dataset"]
    assert dataset["DatasetName"] == "settings"
    assert dataset["IdentityId"] == identity
    assert dataset["NumRecords"] == 2
    assert dataset["DataStorage"] == len("themedark") + len("langfr")
    assert dataset["LastModifiedBy"] == "phone-1"
    assert dataset["CreationDate"] > 1_000_000_000

    datasets = aws("list-datasets", "--identity-pool-id", cli_pool, "--identity-id", identity)
    assert datasets["Count"] == 1
    assert [(d["DatasetName"], d["NumRecords"]) for d in datasets["Datasets"]] == [
        ("settings", 2)]

    usage = aws("describe-identity-usage", "--identity-pool-id", cli_pool,
                "--identity-id", identity)["IdentityUsage"]
    assert usage["IdentityId"] == identity
    assert usage["IdentityPoolId"] == cli_pool
    assert usage["DatasetCount"] == 1
    assert usage["DataStorage"] == dataset["DataStorage"]

    deleted = aws("delete-dataset", *where)["Dataset"]
    assert deleted["DatasetName"] == "settings"
    assert deleted["NumRecords"] == 2
    gone = aws.run("describe-dataset", *where)
    assert gone.code != 0
    assert "ResourceNotFoundException" in gone.stderr
    assert aws("list-datasets", "--identity-pool-id", cli_pool,
               "--identity-id", identity)["Datasets"] == []
    after = aws("list-records", *where, "--last-sync-count", "1")
    assert after["DatasetDeletedAfterRequestedSyncCount"] is True


def test_identity_pool_usage(aws: Aws, cli_pool: str) -> None:
    identity = new_identity_id()
    _write(aws, cli_pool, identity, "usage",
           [{"Op": "replace", "Key": "k", "Value": "vvvv", "SyncCount": 0}])

    def pool_usage() -> dict[str, Any]:
        return aws("describe-identity-pool-usage",
                   "--identity-pool-id", cli_pool)["IdentityPoolUsage"]

    usage = pool_usage()
    assert usage["IdentityPoolId"] == cli_pool
    assert usage["DataStorage"] >= len("kvvvv")
    # SyncSessionsCount is added to the database once a second.
    deadline = time.monotonic() + 5
    while usage["SyncSessionsCount"] < 1 and time.monotonic() < deadline:
        time.sleep(0.3)
        usage = pool_usage()
    assert usage["SyncSessionsCount"] >= 1

    found: dict[str, Any] | None = None
    token: list[str] = []
    for _ in range(100):  # the shared account may own many pools: follow NextToken
        page = aws("list-identity-pool-usage", "--max-results", "60", *token)
        assert page["Count"] == len(page["IdentityPoolUsages"]) <= 60
        found = next((u for u in page["IdentityPoolUsages"]
                      if u["IdentityPoolId"] == cli_pool), None)
        if found is not None or not page.get("NextToken"):
            break
        token = [f"--next-token={page['NextToken']}"]
    assert found is not None, "list-identity-pool-usage does not list the pool"
    assert found["DataStorage"] == pool_usage()["DataStorage"]


def test_cognito_events(aws: Aws, cli_pool: str) -> None:
    assert aws("get-cognito-events", "--identity-pool-id", cli_pool) == {"Events": {}}
    assert aws("set-cognito-events", "--identity-pool-id", cli_pool,
               "--events", json.dumps({"SyncTrigger": LAMBDA_ARN})) is None
    assert aws("get-cognito-events", "--identity-pool-id", cli_pool) == {
        "Events": {"SyncTrigger": LAMBDA_ARN}}
    bad = aws.run("set-cognito-events", "--identity-pool-id", cli_pool,
                  "--events", json.dumps({"NoSuchEvent": LAMBDA_ARN}))
    assert bad.code != 0
    assert "InvalidParameterException" in bad.stderr
    # As AWS documents it: only the event types given change, so an empty map changes
    # nothing, and an empty value clears a trigger.
    aws("set-cognito-events", "--identity-pool-id", cli_pool, "--events", "{}")
    assert aws("get-cognito-events", "--identity-pool-id", cli_pool) == {
        "Events": {"SyncTrigger": LAMBDA_ARN}}
    aws("set-cognito-events", "--identity-pool-id", cli_pool,
        "--events", json.dumps({"SyncTrigger": ""}))
    assert aws("get-cognito-events", "--identity-pool-id", cli_pool) == {"Events": {}}


def test_identity_pool_configuration(aws: Aws, cli_pool: str) -> None:
    before = aws("get-identity-pool-configuration", "--identity-pool-id", cli_pool)
    assert before["IdentityPoolId"] == cli_pool
    assert "CognitoStreams" not in before or before["CognitoStreams"].get(
        "StreamingStatus") != "ENABLED"

    streams = {"StreamName": "sync-stream", "RoleArn": STREAM_ROLE,
               "StreamingStatus": "DISABLED"}
    push = {"ApplicationArns": [PUSH_APP], "RoleArn": PUSH_ROLE}
    answer = aws("set-identity-pool-configuration", "--identity-pool-id", cli_pool,
                 "--cognito-streams", json.dumps(streams), "--push-sync", json.dumps(push))
    assert answer["IdentityPoolId"] == cli_pool
    assert answer["CognitoStreams"] == streams
    assert answer["PushSync"] == push

    again = aws("get-identity-pool-configuration", "--identity-pool-id", cli_pool)
    assert again["CognitoStreams"] == streams
    assert again["PushSync"] == push


def test_register_device_with_developer_keys_is_refused(aws: Aws, cli_pool: str) -> None:
    refused = aws.run("register-device", "--identity-pool-id", cli_pool,
                      "--identity-id", new_identity_id(), "--platform", "GCM",
                      "--token", "device-token")
    assert refused.code != 0
    assert "NotAuthorizedException" in refused.stderr
    assert refused.stdout.strip() == ""
