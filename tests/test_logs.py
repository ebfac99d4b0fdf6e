"""The server's log on standard error, read line by line: one format for every line
(``--log-format json``: every line a JSON object), every request once with its operation,
caller, status, error code and latency; a refused signature with its reason and never a
secret; an unexpected error with its traceback exactly once."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import REGION, independent_of_backend, new_identity_id, wait_until

# Ephemeral servers (SQLite whatever the test backend): the log does not depend on it.
pytestmark = independent_of_backend


class LoggedServer:
    """``cogsync serve --print-json`` with its standard error kept in a file."""

    def __init__(self, folder: Path, *args: str):
        self.stderr = folder / "stderr.log"
        command = [sys.executable, "-m", "cogsync", "serve", "--ephemeral", "--port", "0",
                   "--print-json", "--log-level", "info", *args]
        with self.stderr.open("w") as sink:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink,
                                            text=True)
        assert self.process.stdout is not None
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())
        self.endpoint = self.info["Endpoint"]

    def client(self, secret: str | None = None) -> Any:
        return boto3.client(
            "cognito-sync", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.info["AccessKeyId"],
            aws_secret_access_key=secret or self.info["SecretAccessKey"],
            config=Config(retries={"total_max_attempts": 1}))

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]  # every line is JSON

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == "cogsync.access"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


@pytest.fixture
def logged(tmp_path: Path) -> Any:
    started: list[LoggedServer] = []

    def start(*args: str) -> LoggedServer:
        server = LoggedServer(tmp_path / f"server{len(started)}" if started else tmp_path, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_json_lines_for_a_request_and_a_refused_signature(logged: Any) -> None:
    srv = logged("--log-format", "json", "--access-log")
    identity = new_identity_id()
    answer = srv.client().list_records(IdentityPoolId=srv.info["IdentityPoolId"],
                                       IdentityId=identity, DatasetName="notes")
    request_id = answer["ResponseMetadata"]["RequestId"]
    wrong = "not-the-secret-" + "x" * 25
    with pytest.raises(ClientError) as refused:
        srv.client(secret=wrong).list_datasets(IdentityPoolId=srv.info["IdentityPoolId"],
                                               IdentityId=identity)
    refused_id = refused.value.response["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: any(r.get("request_id") == refused_id for r in srv.access()))
    srv.stop()

    records = srv.records()
    assert {"time", "level", "logger", "message"} <= set(records[0])
    welcome = [r for r in records if "Ready. Stop with Ctrl-C." in r["message"]]
    assert len(welcome) == 1  # with --print-json, the welcome too is a JSON line
    (line,) = [r for r in srv.access() if r.get("request_id") == request_id]
    assert line["operation"] == "ListRecords" and line["service"] == "cognito-sync"
    assert line["status"] == 200 and "error_code" not in line
    assert line["credentials"] == "developer" and line["account"] == srv.info["AccountId"]
    assert line["access_key"] == srv.info["AccessKeyId"]
    assert line["client"] == "127.0.0.1" and line["level"] == "info"
    assert 0 < line["latency_ms"] < 10_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    (no,) = [r for r in srv.access() if r.get("request_id") == refused_id]
    assert no["status"] == 403 and no["operation"] == "ListDatasets"
    assert no["error_code"] == "InvalidSignatureException"
    assert no["reason"].startswith("InvalidSignatureException: The request signature")
    assert no["credentials"] == "none" and no["access_key"] == srv.info["AccessKeyId"]
    logged_text = "\n".join(json.dumps(r) for r in srv.access())
    assert wrong not in logged_text and srv.info["SecretAccessKey"] not in logged_text
    assert "Signature=" not in logged_text


def test_without_the_access_log_only_refusals_are_logged(logged: Any) -> None:
    srv = logged("--log-format", "json")
    pool, identity = srv.info["IdentityPoolId"], new_identity_id()
    answer = srv.client().list_datasets(IdentityPoolId=pool, IdentityId=identity)
    url = srv.client().generate_presigned_url(
        "list_datasets", Params={"IdentityPoolId": pool, "IdentityId": identity})
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403
    refused_id = refused.value.headers["x-amzn-requestid"]
    assert wait_until(lambda: len(srv.access()) == 1)
    (line,) = srv.access()  # the refusal; the request that succeeded is not logged
    assert line["request_id"] == refused_id != answer["ResponseMetadata"]["RequestId"]
    assert line["error_code"] == "InvalidSignatureException" and line["reason"]
    assert "X-Amz-Signature" not in json.dumps(line) and "?" not in line["path"]


def test_the_text_format_carries_the_same_fields(logged: Any) -> None:
    srv = logged("--access-log")
    answer = srv.client().list_datasets(IdentityPoolId=srv.info["IdentityPoolId"],
                                        IdentityId=new_identity_id())
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: any(request_id in line for line in srv.lines()))
    (line,) = [line for line in srv.lines() if request_id in line]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO cogsync\.access: "
                    r"GET /identitypools/\S+/datasets 200 ListDatasets [\d.]+ ms request_id=",
                    line)
    assert "operation=ListDatasets status=200" in line and "credentials=developer" in line


def test_an_unexpected_error_logs_its_traceback_once(logged: Any) -> None:
    srv = logged("--log-format", "json", "--access-log")
    pool, identity = srv.info["IdentityPoolId"], new_identity_id()
    client = srv.client()
    client.list_datasets(IdentityPoolId=pool, IdentityId=identity)  # the key is known
    database = Path(srv.info["DataDir"]) / "cogsync.db"
    with sqlite3.connect(database, timeout=10) as conn:
        conn.execute("DROP TABLE datasets")  # a bug's stand-in: a table the code needs
    with pytest.raises(ClientError) as failed:
        client.describe_dataset(IdentityPoolId=pool, IdentityId=identity, DatasetName="d")
    assert failed.value.response["Error"]["Code"] == "InternalErrorException"
    request_id = failed.value.response["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: any(r.get("request_id") == request_id for r in srv.access()))
    srv.stop()

    records = srv.records()
    with_traceback = [r for r in records if "traceback" in r]
    assert len(with_traceback) == 1
    (error,) = with_traceback
    assert error["level"] == "error" and error["request_id"] == request_id
    assert error["traceback"].startswith("Traceback") and "no such table" in error["traceback"]
    assert srv.stderr.read_text().count("Traceback") == 1
    (line,) = [r for r in srv.access() if r.get("request_id") == request_id]
    assert line["status"] == 500 and line["error_code"] == "InternalErrorException"
    assert "no such table" not in json.dumps(line)  # the client learnt nothing of it either
    assert "no such table" not in json.dumps(failed.value.response)
