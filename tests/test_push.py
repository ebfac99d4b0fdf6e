"""Push sync delivery: through the SNS API, to a webhook, and on the live channel."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tests.identity_helpers import (
    GCM_APP,
    make_pool,
    sync_client_for,
    unauthenticated_credentials,
)
from tests.peers import DUMMY_AWS, HttpReceiver, SnsApiServer, free_port
from tests.server import ServerProcess, wait_until
from tests.test_sync_semantics import Dataset, put


class Household:
    """One identity, two devices (a phone that writes, a tablet subscribed)."""

    def __init__(self, server: ServerProcess, dataset: str = "notes"):
        self.pool = make_pool(server)
        self.identity, self.creds = unauthenticated_credentials(server, self.pool)
        self.client = sync_client_for(server, self.creds)
        self.ds = Dataset(self.client, self.pool, self.identity, dataset)
        self.ds.update([put("created", "yes")])
        self.devices = {}
        for name in ("phone", "tablet"):
            device_id = self.client.register_device(
                IdentityPoolId=self.pool, IdentityId=self.identity, Platform="GCM",
                Token=f"{name}-token-{self.identity[-8:]}")["DeviceId"]
            self.client.subscribe_to_dataset(**self.ds.where, DeviceId=device_id)
            self.devices[name] = device_id

    def token(self, name: str) -> str:
        return f"{name}-token-{self.identity[-8:]}"

    def write_from_phone(self, key: str, value: str, count: int = 0) -> int:
        written = self.ds.update([put(key, value, count)], DeviceId=self.devices["phone"])
        return int(written[0]["SyncCount"])

    def write_several(self, n: int) -> list[int]:
        """n changes of one key from the phone; their sync counts, in order."""
        counts = [self.write_from_phone("k", "0")]
        for i in range(1, n):
            counts.append(self.write_from_phone("k", str(i), counts[-1]))
        return counts


@pytest.fixture(scope="module")
def sns() -> Iterator[SnsApiServer]:
    server = SnsApiServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sns_server(sns: SnsApiServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("sns"),
                         ["--push", f"sns://127.0.0.1:{sns.port}"],
                         env={**DUMMY_AWS, "COGSYNC_OUTBOX_BACKOFF": "0.05"}).start()
    yield proc
    proc.kill()


def test_sns_push_reaches_other_devices_only(sns_server: ServerProcess,
                                             sns: SnsApiServer) -> None:
    home = Household(sns_server)
    count = home.write_from_phone("a", "1")
    messages = wait_until(lambda: sns.messages_for(home.token("tablet")))
    assert len(messages) == 1
    structure = messages[0]
    # GCM (FCM) and ADM deliver data as string extras: Android's sync manager reads
    # extras.getString("syncCount") and parses it, so every value is a string.
    expected = {"source": "cognito-sync", "type": "SyncTrigger", "syncCount": str(count),
                "identityPoolId": home.pool, "identityId": home.identity,
                "datasetName": "notes"}
    for platform in ("GCM", "ADM"):
        data = json.loads(structure[platform])["data"]
        assert data == expected and all(isinstance(v, str) for v in data.values())
        assert int(data["syncCount"]) == count
    apns = json.loads(structure["APNS"])  # APNS as AWS sends it: the count a number
    assert apns["aps"] == {"content-available": 1} and apns["syncCount"] == count
    assert sns.messages_for(home.token("phone")) == []  # the writer is not told
    # The endpoint was made under the pool's GCM application, for the tablet's token.
    assert (GCM_APP, home.token("tablet")) in sns.endpoints.values()
    # A write from no particular device reaches both.
    home.ds.update([put("b", "2")])
    assert wait_until(lambda: len(sns.messages_for(home.token("phone"))) == 1)
    # Unsubscribed: no more pushes for the tablet.
    home.client.unsubscribe_from_dataset(**home.ds.where, DeviceId=home.devices["tablet"])
    home.write_from_phone("c", "3")
    time.sleep(0.5)
    assert len(sns.messages_for(home.token("tablet"))) == 2


def test_a_rejected_token_disables_the_device(sns_server: ServerProcess,
                                              sns: SnsApiServer) -> None:
    home = Household(sns_server)
    sns.rejected.add(home.token("tablet"))
    home.write_from_phone("a", "1")
    # The rejection disables the device: later changes are not even queued for it.
    wait_until(lambda: not json.loads(sns_server.cli("outbox", "list", "--json")))
    sns.rejected.discard(home.token("tablet"))
    home.write_from_phone("a", "2", 2)  # "a" was written at count 2
    time.sleep(0.5)
    assert sns.messages_for(home.token("tablet")) == []
    assert json.loads(sns_server.cli("outbox", "list", "--dead", "--json")) == []


def _verify(secret: str, headers: dict[str, str]) -> bool:
    expected = hmac.new(secret.encode(),
                        headers["x-cogsync-timestamp"].encode() + b"." +
                        headers["x-raw-body"].encode(), hashlib.sha256).hexdigest()
    return headers["x-cogsync-signature"] == f"sha256={expected}"


def test_webhook_push_is_signed_and_retried(make_server: Any) -> None:
    failures = {"left": 2}

    def respond(body: dict[str, Any]) -> int:
        if failures["left"] > 0:
            failures["left"] -= 1
            return 503
        return 200

    hook = HttpReceiver(respond).start()
    try:
        srv = make_server("--push", hook.url, env={"COGSYNC_PUSH_WEBHOOK_SECRET": "s3cret",
                                                   "COGSYNC_OUTBOX_BACKOFF": "0.05"})
        home = Household(srv)
        counts = home.write_several(3)
        assert wait_until(lambda: len(hook.received) == 3)
        # In sync-count order, after two failed attempts, each signed with the secret.
        assert [body["message"]["syncCount"] for _, body in hook.received] == counts
        assert all(body["deviceId"] == home.devices["tablet"] for _, body in hook.received)
        assert all(_verify("s3cret", headers) for headers, _ in hook.received)
        assert not _verify("wrong", hook.received[0][0])
    finally:
        hook.stop()


def test_undeliverable_pushes_end_dead_and_can_be_retried(make_server: Any) -> None:
    broken = {"on": True}
    hook = HttpReceiver(lambda body: 500 if broken["on"] else 200).start()
    try:
        srv = make_server("--push", hook.url, env={"COGSYNC_OUTBOX_MAX_ATTEMPTS": "2",
                                                   "COGSYNC_OUTBOX_BACKOFF": "0.05"})
        home = Household(srv)
        home.write_from_phone("k", "v")
        dead = wait_until(lambda: json.loads(srv.cli("outbox", "list", "--dead", "--json")))
        assert len(dead) == 1
        assert dead[0]["Kind"] == "push" and dead[0]["Attempts"] == 2
        assert "500" in dead[0]["LastError"]
        broken["on"] = False
        assert json.loads(srv.cli("outbox", "retry", "--json")) == {"Requeued": 1}
        assert wait_until(lambda: len(hook.received) == 1)
    finally:
        hook.stop()


def test_pushes_survive_kill_9_before_delivery(make_server: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens yet
    srv = make_server("--push", down, env={"COGSYNC_OUTBOX_BACKOFF": "0.05",
                                           "COGSYNC_LEASE_SECONDS": "1"})
    home = Household(srv)
    counts = home.write_several(3)
    hook = HttpReceiver().start()
    try:
        srv.restart(["--push", hook.url])
        assert wait_until(lambda: len(hook.received) >= 3)
        assert [body["message"]["syncCount"] for _, body in hook.received][:3] == counts
    finally:
        hook.stop()


def presigned_live_url(server: ServerProcess, pool: str, identity: str,
                        creds: dict[str, Any]) -> str:
    url = f"{server.endpoint}/_cogsync/live?IdentityPoolId={pool}&IdentityId={identity}"
    request = AWSRequest(method="GET", url=url)
    signer = SigV4QueryAuth(BotoCredentials(creds["AccessKeyId"], creds["SecretKey"],
                                            creds["SessionToken"]),
                            "cognito-sync", "us-east-1", expires=60)
    signer.add_auth(request)
    return str(request.url)


def open_stream(url: str) -> http.client.HTTPResponse:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    connection.request("GET", f"{parsed.path}?{parsed.query}")
    return connection.getresponse()


def read_events_in_background(response: http.client.HTTPResponse,
                              events: list[dict[str, Any]]) -> threading.Thread:
    """Reads the stream until its first ``data:`` line; join the thread to wait."""

    def read() -> None:
        for line in response:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_live_channel_hears_another_devices_change(make_server: Any) -> None:
    srv = make_server()
    home = Household(srv)
    response = open_stream(presigned_live_url(srv, home.pool, home.identity, home.creds))
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream"
    assert response.readline() == b": connected\n"
    events: list[dict[str, Any]] = []
    reader = read_events_in_background(response, events)
    count = home.write_from_phone("k", "live")
    reader.join(10)
    assert events == [{"source": "cognito-sync", "type": "SyncTrigger", "syncCount": count,
                       "identityPoolId": home.pool, "identityId": home.identity,
                       "datasetName": "notes", "deviceId": home.devices["phone"]}]


def test_live_channel_requires_that_identitys_credentials(make_server: Any) -> None:
    srv = make_server()
    home = Household(srv)
    other, other_creds = unauthenticated_credentials(srv, home.pool)
    response = open_stream(presigned_live_url(srv, home.pool, home.identity, other_creds))
    assert response.status == 403
    assert response.getheader("x-amzn-errortype") == "NotAuthorizedException"
    unsigned = open_stream(f"{srv.endpoint}/_cogsync/live?IdentityPoolId={home.pool}"
                            f"&IdentityId={home.identity}")
    assert unsigned.status == 403
    assert unsigned.getheader("x-amzn-errortype") == "MissingAuthenticationTokenException"
    assert other
