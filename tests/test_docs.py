"""Every example in README.md and docs/ runs, twice in a row, against a real server, so
no page can claim what the code does not do (see tests/docs_blocks.py for the rules).

The examples see the environment a reader has after pasting the lines the server prints
at its first start: the service endpoints, the region, a developer key and the pool id,
plus the data folder (or database) for the admin commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs_blocks import ROOT, RUNNABLE, Block, blocks_of, documents
from tests.server import REGION, ServerProcess, independent_of_backend

BLOCK_TIMEOUT = 180
READY_LINE = "Ready."


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _with_examples() -> list[Path]:
    return [path for path in documents() if any(b.runs for b in blocks_of(path))]


@independent_of_backend
def test_every_example_runs_or_says_why() -> None:
    runnable = 0
    for path in documents():
        text = path.read_text()
        assert text.count("```") % 2 == 0, f"{_name(path)}: an unclosed code fence"
        for block in blocks_of(path):
            if block.directive == "not run":
                assert len(block.note) > 10, f"{block.where}: say why it is not run"
                assert block.language in RUNNABLE, f"{block.where}: only examples are run"
            elif block.directive == "run":
                assert block.note == "server", f"{block.where}: unknown mode {block.note!r}"
            runnable += block.runs
    assert runnable >= 5  # the pages do hold examples, and the parser finds them


def _environment(server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    assert server.credentials is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COGSYNC_", "AWS_"))}
    env.update(
        AWS_ENDPOINT_URL_COGNITO_SYNC=server.endpoint,
        AWS_ENDPOINT_URL_COGNITO_IDENTITY=server.endpoint,
        AWS_ENDPOINT_URL_STS=server.endpoint,
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCESS_KEY_ID=server.credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.credentials.secret_access_key,
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        COGSYNC_ENDPOINT=server.endpoint,
        COGSYNC_POOL_ID=server.pool_id,
        COGSYNC_DATA_DIR=str(server.data_dir),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        NODE_PATH=str(ROOT / "tests" / "js" / "node_modules"),
        PYTHONUNBUFFERED="1",
    )
    if server.database:
        env["COGSYNC_DATABASE_URL"] = server.database
    return env


def _command(block: Block) -> list[str]:
    if block.language == "python":
        return [sys.executable, "-c", block.code]
    if block.language == "js":
        return ["node", "--input-type=module", "-e", block.code]
    return ["bash", "-e", "-o", "pipefail", "-c", block.code]


def _run(block: Block, env: dict[str, str], cwd: Path) -> None:
    try:
        done = subprocess.run(_command(block), capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT} s\n{exc.output}")
    assert done.returncode == 0, (
        f"{block.where} failed ({done.returncode}):\n{block.code}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}"
    )


def _serve(block: Block, env: dict[str, str], data_dir: Path) -> None:
    """A block that starts a server: it must say it is ready, then stop on Ctrl-C."""
    env = {**env, "COGSYNC_PORT": "0", "COGSYNC_DATA_DIR": str(data_dir)}
    env.pop("COGSYNC_DATABASE_URL", None)
    process = subprocess.Popen(_command(block), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                               start_new_session=True)
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith(READY_LINE):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        ready.wait(BLOCK_TIMEOUT)
        assert any(line.startswith(READY_LINE) for line in lines), (
            f"{block.where} did not start a server:\n" + "".join(lines)
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            deadline = time.monotonic() + 20
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize("path", _with_examples(), ids=_name)
def test_examples_run(path: Path, make_server: Callable[..., ServerProcess],
                      tmp_path: Path) -> None:
    # A server of its own: examples configure the pool (a Sync Trigger, streams) in ways
    # other tests must not meet.
    server = make_server()
    env = _environment(server, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    for round_ in (1, 2):  # examples are written to be run again
        for number, block in enumerate(blocks_of(path)):
            if not block.runs:
                continue
            if block.serves:
                if round_ == 1:
                    _serve(block, env, tmp_path / f"served{number}")
                continue
            _run(block, env, work)


@independent_of_backend
def test_configuration_page_lists_every_setting() -> None:
    """docs/configuration.md has a row for each setting of the table the command line
    is built from, with its flag and its default."""
    from cogsync.config import OPTIONS

    rows = [line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines()
            if line.startswith("|")]
    for option in OPTIONS:
        row = next((r for r in rows if f"`{option.variable}`" in r), None)
        assert row is not None, f"docs/configuration.md lacks {option.variable}"
        if option.flag is not None:
            assert f"`{option.flag}`" in row, (option.flag, row)
        default = option.describe_default()
        if option.default_text is None and default not in ("none", "off"):
            assert f"`{default}`" in row, (option.variable, default, row)
