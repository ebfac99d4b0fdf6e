"""The fixed anchor: a bare Starlette app on uvicorn (one worker, httptools, uvloop).

Every cost figure of ``benchmarks.cost`` is also given as a ratio to this server,
measured in the same run. It is not cogsync's own health endpoint, so that a change of
cogsync's server stack (another HTTP server, another ASGI entry) shows up as a gain or a
loss against it instead of moving the yardstick.

    python -m benchmarks.anchor   # prints "anchor at http://127.0.0.1:PORT", then "Ready."
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procs import Served

PATH = "/"
BODY = b'{"status":"ok"}'
_ENDPOINT = re.compile(r"anchor at http://([\d.]+):(\d+)")


def app() -> Any:
    """One route answering a small JSON body: the least an ASGI JSON service does."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def status(_request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(PATH, status)])


def main() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(app(), http="httptools", loop="uvloop",
                                           workers=1, lifespan="off", access_log=False,
                                           log_level="warning"))
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets)
        print(f"anchor at http://127.0.0.1:{sock.getsockname()[1]}\nReady.", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


@dataclass
class AnchorServer(Served):
    """The anchor in a process of its own, optionally under a wrapper (valgrind)."""

    wrapper: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    output: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def request(self) -> bytes:
        return f"GET {PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    def start(self, timeout: float | None = None) -> AnchorServer:
        def watch(line: str) -> bool:
            self.output.append(line)
            if m := _ENDPOINT.search(line):
                self.host, self.port = m.group(1), int(m.group(2))
            return line.startswith("Ready.")

        root = str(Path(__file__).resolve().parent.parent)  # benchmarks is no package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.launch([sys.executable, "-m", "benchmarks.anchor"], env, watch,
                    lambda: bool(self.port), "the anchor", timeout)
        return self


if __name__ == "__main__":
    main()
