"""The AWS SDK for JavaScript (v2 and v3) and the official Cognito Sync Manager for
JavaScript, run with Node's test runner against a private cogsync server.

The JavaScript side lives in ``tests/js``; its dependencies are pinned in
``package-lock.json`` and installed with ``npm ci`` when ``node_modules`` is missing or
older than the lockfile. Node and npm are required: without them this test fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.identity_helpers import DEVELOPER_PROVIDER, GCM_APP, make_pool
from tests.node_tools import node_env, run_node_tests, tool
from tests.server import ServerProcess

JS_DIR = Path(__file__).parent / "js"
NODE_TIMEOUT = 120


def test_javascript_sdks_and_sync_manager(make_server: Callable[..., ServerProcess]) -> None:
    tool("node")
    tool("npm")
    # Limits above one page of each listing, for the Sync Manager's paging test.
    server = make_server(env={"COGSYNC_MAX_RECORDS": "1100", "COGSYNC_MAX_DATASETS": "70"})
    pool_id = make_pool(server, unauthenticated=True, push=True)
    account = server.client("sts").get_caller_identity()["Account"]
    env = node_env(server, pool_id, COGSYNC_ACCOUNT_ID=account,
                   COGSYNC_DEVELOPER_PROVIDER=DEVELOPER_PROVIDER, COGSYNC_GCM_APP_ARN=GCM_APP)
    run_node_tests(JS_DIR, env, NODE_TIMEOUT)
