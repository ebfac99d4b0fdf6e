"""Where a request's instructions go, stage by stage, in the app (needs valgrind).

    python -m benchmarks.stages [--requests 60] [--scenarios update,list]

Under callgrind, the app of ``cogsync serve`` (as ``benchmarks.instructions`` builds it,
on a new SQLite file) is set up with valid signed requests, then each stage of the
request path is called on its own, N and then 2N times, and the instructions of the 2N
minus those of the N, over N, are its cost: routing, reading the SigV4 claim, verifying
it, gathering and validating the input (and validating alone), the operation with its
durable commit (service and store), rendering the result, and the whole request through
the ASGI entry. The HTTP server in front (``cogsync.http``) is not in these figures:
``benchmarks.cost`` counts the whole server. Stages overlap (gathering includes
validation; the whole request includes every stage), so they do not add up exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.instructions import InProcess, _requests, asgi_request

SCENARIOS = ("update", "list")
_SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)


class Counter:
    """Dumps of this process's callgrind counts, through ``callgrind_control``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pid = os.getpid()

    def control(self, *action: str) -> None:
        subprocess.run(["callgrind_control", *action, str(self.pid)], check=True,
                       capture_output=True)

    def dump(self) -> int:
        before = set(self.folder.glob(f"callgrind.{self.pid}*"))
        self.control("-d")
        (path,) = set(self.folder.glob(f"callgrind.{self.pid}*")) - before
        found = _SUMMARY.search(path.read_bytes())
        path.unlink()
        assert found is not None
        return int(found.group(1))

    async def per_call(self, call: Callable[[], Awaitable[Any] | Any], n: int) -> float:
        async def run(times: int) -> None:
            for _ in range(times):
                result = call()
                if asyncio.iscoroutine(result):
                    await result
        self.dump()
        await run(n)
        first = self.dump()
        await run(2 * n)
        second = self.dump()
        return (second - first) / n


async def stages(scenario: str, n: int, counter: Counter) -> dict[str, float]:
    from cogsync.auth.sigv4 import parse_signed_request, verify
    from cogsync.protocol.model import SYNC_SERVICE
    from cogsync.protocol.responses import render_result
    from cogsync.protocol.routing import build_input
    from cogsync.protocol.validation import validate
    from cogsync.sync.operations import HANDLERS

    with tempfile.TemporaryDirectory(prefix="cogsync-stages-", ignore_cleanup_errors=True) as d:
        node = InProcess(Path(d), None)
        node.start()
        app = node.app
        built = await _requests(node, scenario, 20 + 6 * n)
        for raw in built[:20]:
            await node.ok(raw)
        requests = []
        for raw in built[20:]:
            scope, body = asgi_request(raw)

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            requests.append((scope, receive, await app._read_request(scope, receive)))
        request = requests[0][2]
        route = app.router.match(request)
        claim = parse_signed_request(request)
        _, key = app.c.keyring.cached(claim.access_key_id)
        params = build_input(route, request)
        caller = await app._authenticate(request, SYNC_SERVICE)
        handler = HANDLERS[route.operation.name]
        region = app.settings.region
        # Each call of the operation and of the whole request gets a request of its own
        # (UpdateRecords: new keys; a write that repeated one would conflict).
        fresh_params = iter([build_input(app.router.match(r), r) for _, _, r in requests[3 * n:]])
        whole = iter(requests[:3 * n])
        results: dict[str, Any] = {}

        async def operation() -> None:
            results["last"] = handler(app.c.service, caller, next(fresh_params))
            await app.c.store.durable()

        async def whole_request() -> None:
            scope, receive, _ = next(whole)
            status: list[int] = []

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(scope, receive, send)
            assert status == [200], status

        counter.control("-i", "on")
        figures = {
            "routing": await counter.per_call(lambda: app.router.match(request), n),
            "SigV4: reading the claim": await counter.per_call(
                lambda: parse_signed_request(request), n),
            "SigV4: verifying": await counter.per_call(
                lambda: verify(request, claim, key.secret_access_key, region=region,
                               service=SYNC_SERVICE), n),
            "input: parsing, gathering, validating": await counter.per_call(
                lambda: build_input(route, request), n),
            "input: validating alone": await counter.per_call(
                lambda: validate(route.operation.input, params), n),
            "operation and durable commit": await counter.per_call(operation, n),
        }
        figures["rendering the result"] = await counter.per_call(
            lambda: render_result(results["last"]), n)
        figures["whole request (ASGI entry)"] = await counter.per_call(whole_request, n)
        counter.control("-i", "off")
        node.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="N (default 60)")
    parser.add_argument("--scenarios", type=lambda t: t.split(","), default=list(SCENARIOS))
    parser.add_argument("--inner", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        figures = asyncio.run(stages(args.inner, args.requests, Counter(Path(args.folder))))
        for name, count in figures.items():
            print(f"  {name:40} {count:>12,.0f}")
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) is needed")
    if not set(args.scenarios) <= set(SCENARIOS):
        parser.error(f"--scenarios takes {','.join(SCENARIOS)}")
    for scenario in args.scenarios:
        print(f"instructions per call, {scenario}, N={args.requests}", flush=True)
        with tempfile.TemporaryDirectory(prefix="cogsync-callgrind-") as folder:
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={folder}/callgrind.%p", sys.executable, "-m",
                 "benchmarks.stages", "--inner", scenario, "--requests", str(args.requests),
                 "--folder", folder],
                capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                env={**os.environ, "PYTHONHASHSEED": "0"})
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        print(done.stdout, end="", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
