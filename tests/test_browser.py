"""cogsync from web pages, in headless Chromium (Debian's ``chromium``), from other origins.

This side builds the site and starts the servers: the page and the v3 module are taken
from docs/web.md as they stand there, next to the official browser builds of aws-sdk v2
and amazon-cognito-js copied unmodified from npm, and the v3 module bundled with esbuild
by the doc's own command.
Two static servers on free ports serve it (two origins); two cogsync servers answer, one
with the default CORS settings and one that allows only the first site's origin.
``tests/browser`` (Node's test runner, playwright-core) drives the browser. Node, npm and
/usr/bin/chromium are required: without them this test fails; it never downloads a
browser.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.identity_helpers import make_pool
from tests.node_tools import install_if_stale, node_env, run_node_tests, tool
from tests.server import ServerProcess, independent_of_backend

BROWSER_DIR = Path(__file__).parent / "browser"
WEB_DOC = Path(__file__).parent.parent / "docs" / "web.md"
CHROMIUM = Path(os.environ.get("COGSYNC_TEST_CHROMIUM", "/usr/bin/chromium"))
NODE_TIMEOUT = 180
OFFICIAL_BUILDS = ("aws-sdk/dist/aws-sdk.min.js", "amazon-cognito-js/dist/amazon-cognito.min.js")
_ESBUILD = re.compile(r"^npx esbuild (.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_files(text: str) -> dict[str, str]:
    """The fenced blocks of a doc that name a file (```html file=index.html)."""
    return {name: body for _, name, body in _FENCE.findall(text)}


def build_site(folder: Path) -> None:
    text = WEB_DOC.read_text(encoding="utf-8")
    files = doc_files(text)
    assert {"index.html", "sync-v3.mjs"} <= files.keys(), f"docs/web.md has {sorted(files)}"
    (folder / "index.html").write_text(files["index.html"], encoding="utf-8")
    (folder / "blank.html").write_text(  # no favicon request: no 404 in the console
        "<!doctype html><title>blank</title><link rel=\"icon\" href=\"data:,\">\n",
        encoding="utf-8")
    for build in OFFICIAL_BUILDS:
        shutil.copyfile(BROWSER_DIR / "node_modules" / build, folder / Path(build).name)
    # The doc's own bundling command, with this folder's esbuild and node_modules.
    command = _ESBUILD.search(text)
    assert command, "docs/web.md shows no `npx esbuild ...` command"
    (folder / "sync-v3.mjs").write_text(files["sync-v3.mjs"], encoding="utf-8")
    result = subprocess.run(
        [str(BROWSER_DIR / "node_modules" / ".bin" / "esbuild"), *shlex.split(command[1]),
         "--log-level=warning"],
        cwd=folder, env={**os.environ, "NODE_PATH": str(BROWSER_DIR / "node_modules")},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"esbuild failed:\n{result.stdout}\n{result.stderr}"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serves ``folder`` on a free port of 127.0.0.1; yields its origin."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@independent_of_backend
def test_doc_files_are_found_by_name() -> None:
    text = "x\n```html file=a.html\n<p>\n```\n```js\nno\n```\n```js file=b.mjs\nb()\n```\n"
    assert doc_files(text) == {"a.html": "<p>\n", "b.mjs": "b()\n"}


def test_web_pages_in_chromium(make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's "
            "chromium package (apt-get install chromium); they never download a browser"
        )
    tool("node")
    tool("npm")
    install_if_stale(BROWSER_DIR)
    site = tmp_path / "site"
    site.mkdir()
    build_site(site)
    server = make_server()
    pool_id = make_pool(server, unauthenticated=True, push=False)
    with static_site(site) as origin, static_site(site) as other_origin:
        restricted = make_server("--cors-origins", origin)
        env = node_env(
            server, pool_id,
            COGSYNC_CHROMIUM=str(CHROMIUM),
            COGSYNC_SITE=origin,
            COGSYNC_OTHER_SITE=other_origin,
            COGSYNC_RESTRICTED_ENDPOINT=restricted.endpoint,
            COGSYNC_RESTRICTED_POOL_ID=make_pool(restricted, unauthenticated=True, push=False),
        )
        print(run_node_tests(BROWSER_DIR, env, NODE_TIMEOUT))
