"""cogsync for other people's tests: ``serve --ephemeral --print-json``, and the pytest
plugin seen from the outside (a sample app's own suite, and a suite that never asked
for it).

None of these use the test backend (an ephemeral server is SQLite in a temporary
folder): they run in the SQLite pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.server import independent_of_backend

pytestmark = independent_of_backend
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "notes_app"
FIELDS = {"Endpoint", "IdentityEndpoint", "Region", "AccessKeyId", "SecretAccessKey",
          "AccountId", "IdentityPoolId", "Pid", "DataDir", "Database", "Ephemeral",
          "OpenMode", "TestControls", "Version", "Environment"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
    return {**env, **extra}


def _ephemeral(tmp: Path, *flags: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``cogsync serve --ephemeral --print-json`` with its temporary folders in ``tmp``;
    the process and the line it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cogsync", "serve", "--ephemeral", "--print-json",
         "--port", "0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(TMPDIR=str(tmp)),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("{"):
        process.kill()
        pytest.fail(f"no JSON line: {line!r}\n{process.communicate()[1]}")
    return process, json.loads(line)


def test_ephemeral_server_prints_one_json_line_and_leaves_nothing(tmp_path: Path) -> None:
    process, info = _ephemeral(tmp_path, "--access-log", "--log-level", "info")
    assert set(info) == FIELDS
    assert info["Ephemeral"] is True and info["Pid"] == process.pid
    data_dir = Path(info["DataDir"])
    assert data_dir.parent == tmp_path and (data_dir / "cogsync.db").exists()
    env = info["Environment"]
    assert env["AWS_ENDPOINT_URL_COGNITO_SYNC"] == env["AWS_ENDPOINT_URL_COGNITO_IDENTITY"] \
        == info["Endpoint"] == info["IdentityEndpoint"]
    assert (env["AWS_ACCESS_KEY_ID"], env["COGSYNC_POOL_ID"]) == (
        info["AccessKeyId"], info["IdentityPoolId"])
    sync = boto3.client("cognito-sync", endpoint_url=info["Endpoint"], region_name=info["Region"],
                        aws_access_key_id=info["AccessKeyId"],
                        aws_secret_access_key=info["SecretAccessKey"],
                        config=Config(retries={"total_max_attempts": 1}))
    usage = sync.list_identity_pool_usage()["IdentityPoolUsages"]
    assert [u["IdentityPoolId"] for u in usage] == [info["IdentityPoolId"]]
    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=30)
    assert process.returncode == 0  # SIGTERM is a graceful stop: drained, then exit 0
    assert rest == ""  # standard output held the JSON line only (the access log: stderr)
    assert "GET /" in errors or "POST /" in errors
    assert "Ready." in errors  # the welcome, for people, on standard error
    assert not data_dir.exists()


def test_a_killed_ephemeral_server_is_swept_by_the_next(tmp_path: Path) -> None:
    killed, info = _ephemeral(tmp_path)
    killed.kill()  # SIGKILL: nothing can remove its folder
    killed.wait(10)
    left = Path(info["DataDir"])
    assert left.exists()
    stranger = tmp_path / "cogsync-ephemeral-1-notours"  # no lock file: not a server's
    stranger.mkdir()
    process, second = _ephemeral(tmp_path)
    assert not left.exists()
    assert stranger.exists()
    assert Path(second["DataDir"]).exists()  # its own folder is locked while it lives
    process.send_signal(signal.SIGINT)  # Ctrl-C: a graceful stop, as SIGTERM
    process.communicate(timeout=30)
    assert process.returncode == 0
    assert not Path(second["DataDir"]).exists()


def test_importing_cogsync_testing_imports_neither_pytest_nor_boto3() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, cogsync.testing; print(sorted(m for m in "
         "('pytest', 'boto3', 'botocore', 'sqlalchemy', 'cogsync.app') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, env=_clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


UNRELATED_CONFTEST = '''
import pytest

@pytest.fixture
def server():
    return "their own server fixture"

@pytest.fixture
def sync():
    return "their own sync fixture"
'''

UNRELATED_TESTS = '''
import sys

def test_their_fixtures_are_theirs(server, sync):
    assert (server, sync) == ("their own server fixture", "their own sync fixture")

def test_nothing_heavy_was_loaded(request):
    assert request.config.pluginmanager.has_plugin("cogsync") == PLUGIN
    loaded = [m for m in ("boto3", "botocore", "sqlalchemy", "cogsync.app") if m in sys.modules]
    assert loaded == []
'''


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=_clean_env())


def test_an_unrelated_suite_is_unchanged_by_the_plugin(tmp_path: Path) -> None:
    """The plugin is installed with cogsync and loads in every pytest run: it must add
    fixtures with its own prefix, start nothing, and change no outcome."""
    (tmp_path / "conftest.py").write_text(UNRELATED_CONFTEST)
    outcomes = {}
    for loaded, flags in ((True, ()), (False, ("-p", "no:cogsync"))):
        (tmp_path / "test_theirs.py").write_text(f"PLUGIN = {loaded}\n" + UNRELATED_TESTS)
        done = _pytest(tmp_path, *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        outcomes[loaded] = done.stdout.strip().splitlines()[-1].split(" in ")[0]
    assert outcomes[True] == outcomes[False] == "2 passed"
    listing = _pytest(tmp_path, "--fixtures").stdout
    section = listing.split("fixtures defined from cogsync.testing.plugin", 1)[1]
    section = section.split("\n--", 1)[0]  # up to the next section, if any
    ours = [line.split()[0] for line in section.splitlines()
            if " -- " in line and not line.startswith(" ")]  # "name [scope] -- where"
    assert ours and all(name.startswith("cogsync_") for name in ours), ours
    assert {"cogsync_server", "cogsync_pool", "cogsync_sync_client", "cogsync_env",
            "cogsync_controls", "cogsync_new_identity"} <= set(ours)
    from cogsync.testing import plugin

    assert [name for name in vars(plugin) if name.startswith("pytest_")] == []  # no hooks


def test_the_sample_app_suite_passes_with_the_plugin_alone() -> None:
    """examples/notes_app tests its settings sync with the plugin's fixtures, fault
    injection included (a conflict loop, a throttled sync)."""
    done = _pytest(SAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout, done.stdout
