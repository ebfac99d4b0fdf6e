"""The AWS SDK for JavaScript (v2 and v3) and the official Cognito Sync Manager for
JavaScript, run with Node's test runner against a private cogsync server.

The JavaScript side lives in ``tests/js``; its dependencies are pinned in
``package-lock.json`` and installed with ``npm ci`` when ``node_modules`` is missing or
older than the lockfile. Node and npm are required: without them this test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.identity_helpers import DEVELOPER_PROVIDER, GCM_APP, make_pool
from tests.server import ServerProcess

JS_DIR = Path(__file__).parent / "js"
NODE_TIMEOUT = 120
NPM_TIMEOUT = 300


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the JavaScript tests need Node.js and npm")
    return path


def _install_if_stale(npm: str) -> None:
    """``npm ci`` unless node_modules was installed from the current lockfile."""
    lockfile = JS_DIR / "package-lock.json"
    installed = JS_DIR / "node_modules" / ".package-lock.json"  # written by every install
    if installed.exists() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True,
        timeout=NPM_TIMEOUT,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


def _node_env(server: ServerProcess, pool_id: str) -> dict[str, str]:
    assert server.credentials is not None
    account = server.client("sts").get_caller_identity()["Account"]
    # No AWS_* settings of the caller's leak into the SDKs: the tests name every credential.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        COGSYNC_ENDPOINT=server.endpoint,
        COGSYNC_ACCESS_KEY_ID=server.credentials.access_key_id,
        COGSYNC_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
        COGSYNC_POOL_ID=pool_id,
        COGSYNC_ACCOUNT_ID=account,
        COGSYNC_DEVELOPER_PROVIDER=DEVELOPER_PROVIDER,
        COGSYNC_GCM_APP_ARN=GCM_APP,
        AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE="1",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true",
    )
    return env


def test_javascript_sdks_and_sync_manager(make_server: Callable[..., ServerProcess]) -> None:
    node, npm = _tool("node"), _tool("npm")
    # Limits above one page of each listing, for the Sync Manager's paging test.
    server = make_server(env={"COGSYNC_MAX_RECORDS": "1100", "COGSYNC_MAX_DATASETS": "70"})
    pool_id = make_pool(server, unauthenticated=True, push=True)
    _install_if_stale(npm)
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec"], cwd=JS_DIR, env=_node_env(server, pool_id),
        capture_output=True, text=True, timeout=NODE_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"node --test exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    counts = dict(re.findall(r"^\u2139 (tests|pass) (\d+)$", result.stdout, re.MULTILINE))
    assert int(counts.get("tests", 0)) > 0, f"node ran no test:\n{result.stdout}"
    assert counts["pass"] == counts["tests"], result.stdout
