"""Running the suite's Node.js test folders (``tests/js``, ``tests/browser``) from pytest:
each has its dependencies pinned in ``package-lock.json``, installed with ``npm ci`` when
``node_modules`` is missing or older than the lockfile, and is run with Node's test runner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.server import ServerProcess

NPM_TIMEOUT = 300


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the JavaScript tests need Node.js and npm")
    return path


def install_if_stale(folder: Path) -> None:
    """``npm ci`` unless node_modules was installed from the current lockfile."""
    lockfile = folder / "package-lock.json"
    installed = folder / "node_modules" / ".package-lock.json"  # written by every install
    if installed.exists() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
        return
    result = subprocess.run(
        [tool("npm"), "ci", "--no-audit", "--no-fund"], cwd=folder, capture_output=True,
        text=True, timeout=NPM_TIMEOUT,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


def node_env(server: ServerProcess, pool_id: str, **extra: str) -> dict[str, str]:
    """The environment of a Node test run against ``server``: where it is, its developer
    key, the pool to use; no AWS_* setting of the caller's leaks into the SDKs."""
    assert server.credentials is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        COGSYNC_ENDPOINT=server.endpoint,
        COGSYNC_ACCESS_KEY_ID=server.credentials.access_key_id,
        COGSYNC_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
        COGSYNC_POOL_ID=pool_id,
        AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE="1",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true",
        **extra,
    )
    return env


def run_node_tests(folder: Path, env: dict[str, str], timeout: float,
                   files: tuple[str, ...] = ()) -> str:
    """``node --test`` in ``folder``; fails unless it ran tests and all of them passed.
    Returns the runner's report."""
    install_if_stale(folder)
    result = subprocess.run(
        [tool("node"), "--test", "--test-reporter=spec", *files], cwd=folder, env=env,
        capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, (
        f"node --test exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    counts = dict(re.findall(r"^\u2139 (tests|pass) (\d+)$", result.stdout, re.MULTILINE))
    assert int(counts.get("tests", 0)) > 0, f"node ran no test:\n{result.stdout}"
    assert counts["pass"] == counts["tests"], result.stdout
    return result.stdout
