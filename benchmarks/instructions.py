"""Instructions per request: the app's own cost, counted, not timed (needs valgrind).

    python -m benchmarks.instructions [--requests 200] [--database sqlite|postgresql]
                                      [--postgres-url URL] [--json FILE]

Timing on a shared machine moves by 2x from one minute to the next; instruction counts do
not. Under valgrind's callgrind, the cogsync app (built as ``cogsync serve`` builds it,
on a new SQLite file or a new PostgreSQL schema for each run) is driven in-process through
its ASGI entry with SigV4-signed requests, one at a time, and the instructions executed
per request are counted for: the bare endpoint, UpdateRecords of 10 new records, and
ListRecords of a 100-record dataset (a new sync session each). Each figure is the
difference between a run of N and one of 2N requests, so start-up, set-up and exit
cancel out; the same inputs give the same count to within a fraction of a percent.

What it leaves out: uvicorn, the HTTP parser and the sockets (the same for every request,
about 200,000 instructions on the machine in docs/performance.md), and the sharing of
commits between concurrent writes (requests go one at a time, so every write commits on
its own). Use it to compare two versions of the code; use benchmarks.run and
benchmarks.all for throughput and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.postgres import POSTGRES_URL, fresh_schema
from benchmarks.signing import RawSigner
from benchmarks.workloads import PATCHES, VALUE, identity_id

SCENARIOS = ("bare", "update", "list")
NAMES = {"bare": "bare endpoint", "update": "UpdateRecords (10 patches)",
         "list": "ListRecords (100 records)"}
HOST = "127.0.0.1:8080"
WARM_UP = 20  # requests before counting starts
_COLLECTED = re.compile(r"Collected : (\d+)")

Scope = dict[str, Any]


def asgi_request(raw: bytes) -> tuple[Scope, bytes]:
    """The ASGI scope and body of one raw HTTP/1.1 request."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    path, _, query = target.partition("?")
    headers = []
    for line in header_lines:
        name, _, value = line.partition(": ")
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": headers}
    return scope, body


class InProcess:
    """The app of ``cogsync serve``, called without a socket."""

    def __init__(self, folder: Path, database: str | None):
        from cogsync.accounts import bootstrap
        from cogsync.app import CogsyncApp
        from cogsync.components import build_components
        from cogsync.config import Settings

        settings = Settings(data_dir=folder, database_url=database, port=0)
        components = build_components(settings)
        first = bootstrap(components.store, components.keyring, settings.region)
        assert first is not None, "a new database creates a key and a pool"
        self.pool_id = first.identity_pool_id
        host, port = HOST.split(":")
        self.signer = RawSigner(host, int(port), first.key.access_key_id,
                                first.key.secret_access_key, "cognito-sync")
        self.app = CogsyncApp(components)

    def start(self) -> None:
        """The request path as ``cogsync serve`` sets it up (group commit, the garbage
        collector's settings), without the background tasks: their work depends on
        time, not on requests."""
        import cogsync.app

        loop = asyncio.get_running_loop()
        app = self.app
        runtime = getattr(app, "runtime", None)
        if runtime is not None:
            from cogsync.runtime import tune_garbage_collector

            runtime.live.attach(loop)
            tune_garbage_collector()
            if runtime.inline:
                app.c.store.group_commits(loop)
            return
        # Older versions (measured for comparison) may lack some of these.
        app.live.attach(loop)
        if hasattr(cogsync.app, "tune_garbage_collector"):
            cogsync.app.tune_garbage_collector()
        if app.inline and hasattr(app.c.store, "group_commits"):
            app.c.store.group_commits(loop)

    def stop(self) -> None:
        self.app.c.store.close()

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        scope, body = asgi_request(raw)
        reply: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                reply["status"] = message["status"]
            else:
                reply["body"] = message.get("body", b"")

        await self.app(scope, receive, send)
        return reply["status"], reply["body"]

    def dataset_path(self, identity: str, dataset: str) -> str:
        pool = quote(self.pool_id, safe="")
        return f"/identitypools/{pool}/identities/{quote(identity, safe='')}/datasets/{dataset}"

    def list_records(self, identity: str, dataset: str) -> bytes:
        return self.signer.request("GET", self.dataset_path(identity, dataset)
                                   + "/records?lastSyncCount=0")

    def update_records(self, identity: str, dataset: str, token: str,
                       patches: list[dict[str, Any]]) -> bytes:
        body = json.dumps({"SyncSessionToken": token, "DeviceId": "bench-device",
                           "RecordPatches": patches}, separators=(",", ":")).encode()
        return self.signer.request("POST", self.dataset_path(identity, dataset), body)

    async def ok(self, raw: bytes) -> dict[str, Any]:
        status, body = await self.call(raw)
        if status != 200:
            raise RuntimeError(f"setup request answered {status}: {body[:300]!r}")
        return json.loads(body)  # type: ignore[no-any-return]


async def _requests(node: InProcess, scenario: str, count: int) -> list[bytes]:
    if scenario == "bare":
        return [f"GET /_cogsync/health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()] * count
    if scenario == "list":
        identity = identity_id(1)
        token = (await node.ok(node.list_records(identity, "profile")))["SyncSessionToken"]
        patches = [{"Op": "replace", "Key": f"setting-{k:03d}", "Value": f"value {k} " + VALUE,
                    "SyncCount": 0} for k in range(100)]
        await node.ok(node.update_records(identity, "profile", token, patches))
        return [node.list_records(identity, "profile")] * count
    datasets = []
    for n in range(40):  # new keys spread over 40 datasets, within the 1 MiB limit
        identity = identity_id(100 + n)
        listing = await node.ok(node.list_records(identity, "bench"))
        datasets.append((identity, "bench", listing["SyncSessionToken"]))
    now = round(time.time(), 3)
    return [node.update_records(*datasets[n % len(datasets)], [
        {"Op": "replace", "Key": f"k{n}-{j}", "Value": VALUE, "SyncCount": 0,
         "DeviceLastModifiedDate": now} for j in range(PATCHES)]) for n in range(count)]


def _instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, capture_output=True)


async def inner(scenario: str, count: int, database: str | None) -> None:
    """Runs under valgrind: set up, then ``count`` requests with instrumentation on."""
    with tempfile.TemporaryDirectory(prefix="cogsync-instructions-",
                                     ignore_cleanup_errors=True) as folder:
        node = InProcess(Path(folder), database)
        node.start()
        built = await _requests(node, scenario, WARM_UP + count)
        warm, timed = built[:WARM_UP], built[WARM_UP:]
        for raw in warm:
            await node.ok(raw)
        _instrument(True)
        statuses = [(await node.call(raw))[0] for raw in timed]
        _instrument(False)
        node.stop()
    if any(status != 200 for status in statuses):
        raise SystemExit(f"{scenario}: {sum(s != 200 for s in statuses)} requests failed")


def _count(scenario: str, requests: int, postgres_url: str | None) -> int:
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--callgrind-out-file=/dev/null", sys.executable, "-m",
               "benchmarks.instructions", "--inner", scenario, "--requests", str(requests)]
    with fresh_schema(postgres_url) if postgres_url else nullcontext(None) as database:
        if database:
            command += ["--database-url", database]
        done = subprocess.run(command, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{scenario} under valgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def measure(requests: int, postgres_url: str | None) -> dict[str, int]:
    """Instructions per request of each scenario: (count(2N) - count(N)) / N; on
    PostgreSQL (``postgres_url``) each run has a new schema."""
    return {scenario: (_count(scenario, 2 * requests, postgres_url)
                       - _count(scenario, requests, postgres_url)) // requests
            for scenario in SCENARIOS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200,
                        help="N: requests of the shorter run (the other runs 2N)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL,
                        help=f"PostgreSQL to make a schema in per run (default {POSTGRES_URL})")
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # of an inner run
    parser.add_argument("--json", metavar="FILE", help="write the results to this file")
    parser.add_argument("--inner", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        asyncio.run(inner(args.inner, args.requests, args.database_url))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) is needed")
    postgres_url = args.postgres_url if args.database == "postgresql" else None
    print(f"instructions per request, {args.database}, N={args.requests}", flush=True)
    counts = measure(args.requests, postgres_url)
    for scenario, count in counts.items():
        ratio = counts["bare"] / count if count else 0.0
        print(f"  {NAMES[scenario]:28} {count:>10,}   bare's is {ratio:6.1%} of it")
    if args.json:
        Path(args.json).write_text(json.dumps({"database": args.database,
                                               "requests": args.requests,
                                               "instructions_per_request": counts}, indent=2)
                                   + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
