"""Instructions per request of the HTTP layer alone: cogsync's server against uvicorn's.

    python -m benchmarks.http_layer [--requests 2000]

Both protocols (cogsync's ``HttpConnection`` and uvicorn's ``HttpToolsProtocol`` with
httptools, the stack cogsync served with before) are fed the same request bytes through
an in-memory transport, on the same event loop, for the same trivial ASGI application
(it reads the body and answers 200 with a small JSON body). Under callgrind, with the
instrumentation on only while N requests go through one keep-alive connection, the
difference between a run of N and one of 2N requests gives the instructions per request:
parsing, the ASGI cycle, the task per request and writing the answer. No socket calls and
no timers, so the figures are exact and repeatable (uvicorn: the bench extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from benchmarks.signing import RawSigner

STACKS = ("cogsync", "uvicorn")
_COLLECTED = re.compile(r"Collected : (\d+)")
ANSWER = b'{"status":"ok"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": ANSWER})


class Transport:
    """Enough of an asyncio transport for both protocols; wakes the driver per answer."""

    def __init__(self) -> None:
        self.answers = 0
        self.done: asyncio.Event = asyncio.Event()

    def write(self, data: bytes) -> None:
        if data.endswith(ANSWER):
            self.answers += 1
            self.done.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def set_write_buffer_limits(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _protocol(stack: str, loop: asyncio.AbstractEventLoop) -> Any:
    if stack == "cogsync":
        from cogsync.config import HttpLimits
        from cogsync.http.connection import HttpConnection
        from cogsync.http.server import HttpServer

        server = HttpServer(app, HttpLimits())
        server.loop = loop
        return HttpConnection(server)
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app, http="httptools", lifespan="off", access_log=False)
    config.load()
    return HttpToolsProtocol(config=config, server_state=ServerState(), app_state={},
                             _loop=loop)


def _request() -> bytes:
    """The head and body of an SDK's UpdateRecords (signed by botocore)."""
    signer = RawSigner("127.0.0.1", 8080, "AKCSEXAMPLE00000000", "secret" * 6, "cognito-sync")
    body = (b'{"SyncSessionToken":"' + b"t" * 200 + b'","DeviceId":"bench-device",'
            b'"RecordPatches":[' + b",".join(
                b'{"Op":"replace","Key":"k%d","Value":"%s","SyncCount":0}' % (n, b"v" * 80)
                for n in range(10)) + b"]}")
    path = ("/identitypools/us-east-1%3A00000000-0000-4000-8000-000000000001/identities/"
            "us-east-1%3A00000000-0000-4000-8000-000000000002/datasets/bench")
    return signer.request("POST", path, body, {"Content-Type": "application/json",
                                               "User-Agent": "Boto3/1.34 md/Botocore#1.34"})


async def _drive(stack: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    transport = Transport()
    protocol = _protocol(stack, loop)
    protocol.connection_made(transport)
    raw = _request()
    for _ in range(20):  # warm up
        transport.done.clear()
        protocol.data_received(raw)
        await transport.done.wait()
    _instrument(True)
    for _ in range(count):
        transport.done.clear()
        protocol.data_received(raw)
        await transport.done.wait()
    _instrument(False)
    assert transport.answers == 20 + count


def _instrument(on: bool) -> None:
    if os.environ.get("COGSYNC_UNDER_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                       check=True, capture_output=True)


def _count(stack: str, requests: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--callgrind-out-file=/dev/null", sys.executable, "-m", "benchmarks.http_layer",
               "--inner", stack, "--requests", str(requests)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "COGSYNC_UNDER_CALLGRIND": "1"})
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{stack} under valgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_layer",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--inner", choices=STACKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        import uvloop

        uvloop.run(_drive(args.inner, args.requests))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) is needed")
    print(f"HTTP layer instructions per request (UpdateRecords-sized request, "
          f"N={args.requests})", flush=True)
    for stack in STACKS:
        per = (_count(stack, 2 * args.requests) - _count(stack, args.requests)) // args.requests
        print(f"  {stack:8} {per:>10,}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
