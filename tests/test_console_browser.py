"""The web console driven in headless Chromium (Debian's ``chromium``, playwright-core in
tests/browser): tests/browser/console.spec.mjs signs in, finds an identity, edits a
record, retries a dead letter and sees a POST without its CSRF token refused; this side
sets up the server and checks that the edit reached a boto3 client's next sync.

The push target answers 500 to the first delivery of each notification, and the server
makes one attempt only, so every notification's first delivery ends a dead letter and
its retry is delivered. ``COGSYNC_CONSOLE_SCREENSHOTS=docs`` saves each page as
docs/console-<page>.png (the pictures in docs/operations.md).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.node_tools import install_if_stale, run_node_tests, tool
from tests.peers import HttpReceiver
from tests.server import ServerProcess, new_identity_id, wait_until
from tests.test_browser import BROWSER_DIR, CHROMIUM
from tests.test_push import Household
from tests.test_sync_semantics import Dataset, put

NODE_TIMEOUT = 180


class FailsFirstDelivery:
    """A webhook that refuses each notification once (and takes it the second time)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> int:
        key = json.dumps([body.get("deviceId"), body.get("message")], sort_keys=True)
        with self.lock:
            if key in self.seen:
                return 200
            self.seen.add(key)
            return 500


def test_console_in_chromium(make_server: Callable[..., ServerProcess]) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: the browser tests need "
                    "Debian's chromium package; they never download a browser")
    tool("node")
    install_if_stale(BROWSER_DIR)
    hook = HttpReceiver(FailsFirstDelivery()).start()
    try:
        srv = make_server("--console", "--push", hook.url,
                          env={"COGSYNC_OUTBOX_MAX_ATTEMPTS": "1",
                               "COGSYNC_OUTBOX_BACKOFF": "0.05"})
        home = Household(srv)
        # A pool to bulk publish: its stream is a file, which takes every record.
        srv.client().set_identity_pool_configuration(
            IdentityPoolId=srv.pool_id,
            CognitoStreams={"StreamName": "profiles", "StreamingStatus": "ENABLED"})
        Dataset(srv.client(), srv.pool_id, new_identity_id(), "profile").update(
            [put("name", "Ada")])
        count = home.write_from_phone("color", "blue")
        assert wait_until(lambda: json.loads(srv.cli("outbox", "list", "--dead", "--json")))
        last = home.ds.list()["DatasetSyncCount"]
        assert last == count

        creds = srv.credentials
        assert creds is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            COGSYNC_CONSOLE_URL=f"{srv.endpoint}/_cogsync/console",
            COGSYNC_ACCESS_KEY_ID=creds.access_key_id,
            COGSYNC_SECRET_ACCESS_KEY=creds.secret_access_key,
            COGSYNC_POOL_ID=home.pool,
            COGSYNC_BULK_POOL_ID=srv.pool_id,
            COGSYNC_IDENTITY_ID=home.identity,
            COGSYNC_DATASET="notes",
            COGSYNC_RECORD_KEY="color",
            COGSYNC_NEW_VALUE="green",
            COGSYNC_CHROMIUM=str(CHROMIUM),
        )
        shots = os.environ.get("COGSYNC_CONSOLE_SCREENSHOTS")
        if shots:
            env["COGSYNC_SCREENSHOTS"] = str(Path(shots).resolve())
        received_before = len(hook.received)
        print(run_node_tests(BROWSER_DIR, env, NODE_TIMEOUT, files=("console.spec.mjs",)))

        # The phone's next sync brings the operator's edit, at a higher sync count.
        delta = home.ds.list(last)
        assert [(r["Key"], r["Value"]) for r in delta["Records"]] == [("color", "green")]
        assert delta["Records"][0]["SyncCount"] > last
        assert delta["Records"][0]["LastModifiedBy"] == "cogsync-operator"
        assert delta["DatasetSyncCount"] > last
        assert home.ds.values() == {"created": "yes", "color": "green"}  # no "intruder"
        # The retried dead letter reached the push target.
        assert len(hook.received) > received_before
    finally:
        hook.stop()
