"""The runnable examples of docs/migration.md, run twice each (they must be re-runnable)
against a real source server and a real target database, with the environment variables
the page names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.server import ServerProcess, independent_of_backend
from tests.test_transfer_import import new_target, prepare_source

DOCS = Path(__file__).resolve().parent.parent / "docs" / "migration.md"
RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)\n```", re.S)


@independent_of_backend
def test_migration_examples_run_and_run_again(tmp_path: Path) -> None:
    blocks = RUNNABLE.findall(DOCS.read_text())
    assert len(blocks) >= 4
    server = ServerProcess(tmp_path / "source").start()
    try:
        source = prepare_source(server, tmp_path, 12)
        target = new_target(tmp_path / "target")
        assert source.server.credentials is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COGSYNC_", "AWS_"))}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            COGSYNC_ENDPOINT=source.server.endpoint,
            COGSYNC_POOL_ID=source.pool_id,
            AWS_ACCESS_KEY_ID=source.server.credentials.access_key_id,
            AWS_SECRET_ACCESS_KEY=source.server.credentials.secret_access_key,
            COGSYNC_DATA_DIR=str(target.data_dir),
        )
        work = tmp_path / "work"
        work.mkdir()
        for block in blocks:
            for attempt in (1, 2):
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work,
                                      env=env, capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, (attempt, block, done.stderr)
    finally:
        server.stop()
    report = json.loads((work / "catch-up.json").read_text())
    assert report["complete"] and report["identities"]["listed"] == 12
    assert (work / "moved" / "cogsync.db").exists()
    assert (work / "cogsync-backup.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
