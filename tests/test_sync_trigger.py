"""Sync Trigger through the Lambda Invoke API, against a local function server.

The function server speaks the Lambda Invoke API (``POST /2015-03-31/functions/{name}/
invocations``), insists on a SigV4 signature for the ``lambda`` service, and behaves by
function name: it modifies, adds, removes, times out, throttles, fails or talks garbage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import make_pool, new_unauthenticated
from tests.peers import DUMMY_AWS
from tests.server import ServerProcess
from tests.test_sync_semantics import Dataset, error_code, put

ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def behave(name: str, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    records = event["datasetRecords"]
    if name == "modify":  # values shouted
        for record in records.values():
            if record["op"] == "replace":
                record["newValue"] = record["newValue"].upper()
    elif name == "add":
        records["added-by-lambda"] = {"newValue": "hello", "op": "replace"}
    elif name == "remove":
        for record in records.values():
            record["op"] = "remove"
            record["newValue"] = None
    elif name == "timeout":
        time.sleep(3)
    elif name == "throttle":
        body = json.dumps({"Type": "User", "message": "Rate exceeded"}).encode()
        return 429, {"x-amzn-errortype": "TooManyRequestsException"}, body
    elif name == "error":
        return 200, {"x-amz-function-error": "Unhandled"}, b'{"errorMessage": "boom"}'
    elif name == "garbage":
        return 200, {}, b"this is not json"
    elif name == "bad-records":
        return 200, {}, json.dumps({"datasetRecords": {"k": {"op": "explode"}}}).encode()
    return 200, {}, json.dumps(event).encode()


class FunctionServer:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                auth = self.headers.get("authorization", "")
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                parts = self.path.split("/")
                if "AWS4-HMAC-SHA256" not in auth or "/lambda/aws4_request" not in auth:
                    status, headers, out = 403, {}, b'{"message": "unsigned"}'
                elif parts[1:3] != ["2015-03-31", "functions"] or parts[4] != "invocations":
                    status, headers, out = 404, {}, b'{"message": "no such route"}'
                else:
                    name = parts[3].rsplit("%3A", 1)[-1].rsplit(":", 1)[-1]
                    event = json.loads(body)
                    server.events.append((name, event))
                    status, headers, out = behave(name, json.loads(body))
                self.send_response(status)
                for key, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def functions() -> Iterator[FunctionServer]:
    server = FunctionServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def trigger_server(functions: FunctionServer,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**DUMMY_AWS, "COGSYNC_LAMBDA_TIMEOUT": "1"}
    proc = ServerProcess(tmp_path_factory.mktemp("trigger"),
                         ["--lambda-endpoint", functions.endpoint], env=env).start()
    yield proc
    proc.kill()


def identity_dataset(server: ServerProcess, function: str) -> tuple[Dataset, Dataset]:
    """(as the identity, as the developer) views of one dataset in a triggered pool."""
    pool = make_pool(server, push=False)
    server.client().set_cognito_events(IdentityPoolId=pool,
                                       Events={"SyncTrigger": ARN.format(function)})
    identity_id, client = new_unauthenticated(server, pool)
    return (Dataset(client, pool, identity_id),
            Dataset(server.client(), pool, identity_id))


def test_the_function_rewrites_values(trigger_server: ServerProcess,
                                      functions: FunctionServer) -> None:
    mine, _ = identity_dataset(trigger_server, "modify")
    mine.update([put("greeting", "hello")])
    written = mine.update([put("greeting", "bye", 1), put("other", "x")])
    assert {r["Key"]: r["Value"] for r in written} == {"greeting": "BYE", "other": "X"}
    assert mine.values() == {"greeting": "BYE", "other": "X"}
    name, event = functions.events[-1]
    assert name == "modify"
    assert event["version"] == 2 and event["eventType"] == "SyncTrigger"
    assert event["region"] == "us-east-1" and event["datasetName"] == "data"
    assert event["identityId"] == mine.where["IdentityId"]
    assert event["identityPoolId"] == mine.where["IdentityPoolId"]
    assert event["datasetRecords"]["greeting"] == {"oldValue": "HELLO", "newValue": "bye",
                                                   "op": "replace"}
    assert event["datasetRecords"]["other"] == {"oldValue": None, "newValue": "x",
                                                "op": "replace"}


def test_the_function_adds_and_removes(trigger_server: ServerProcess) -> None:
    added, _ = identity_dataset(trigger_server, "add")
    added.update([put("k", "v")])
    assert added.values() == {"k": "v", "added-by-lambda": "hello"}
    added.update([put("k", "w", 1)])  # the added key exists now: written over it
    assert added.values() == {"k": "w", "added-by-lambda": "hello"}
    removed, developer = identity_dataset(trigger_server, "remove")
    developer.update([put("k", "v")])  # developer writes skip the trigger
    assert removed.values() == {"k": "v"}
    removed.update([put("k", "changed", 1)])
    assert removed.values() == {"k": None}


def test_developer_writes_do_not_invoke(trigger_server: ServerProcess,
                                        functions: FunctionServer) -> None:
    _, developer = identity_dataset(trigger_server, "modify")
    before = len(functions.events)
    developer.update([put("k", "quiet")])
    assert developer.values() == {"k": "quiet"}
    assert len(functions.events) == before


@pytest.mark.parametrize(("function", "code", "status"), [
    ("timeout", "LambdaSocketTimeoutException", 400),
    ("throttle", "LambdaThrottledException", 429),
    ("error", "InvalidLambdaFunctionOutputException", 400),
    ("garbage", "InvalidLambdaFunctionOutputException", 400),
    ("bad-records", "InvalidLambdaFunctionOutputException", 400),
])
def test_failures_write_nothing(trigger_server: ServerProcess, function: str, code: str,
                                status: int) -> None:
    mine, developer = identity_dataset(trigger_server, function)
    developer.update([put("k", "before")])
    with pytest.raises(ClientError) as excinfo:
        mine.update([put("k", "after", 1)])
    assert error_code(excinfo) == (code, status)
    assert developer.values() == {"k": "before"}
    assert developer.list()["DatasetSyncCount"] == 1


def test_conflicts_still_apply(trigger_server: ServerProcess) -> None:
    mine, _ = identity_dataset(trigger_server, "modify")
    mine.update([put("k", "v")])
    with pytest.raises(ClientError) as excinfo:
        mine.update([put("k", "stale", 0)])
    assert error_code(excinfo) == ("ResourceConflictException", 409)
