"""A trivial HTTP/1.1 server that answers every request with the same small response.

It measures the load generator's own ceiling: if the client drives this server much
faster than it drives cogsync's bare endpoint, the client is not what limits the figures.

    python -m benchmarks.fixed_server   # prints "port N", serves until killed
"""

from __future__ import annotations

import asyncio
from typing import Any

RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: 15\r\n\r\n{\"status\":\"ok\"}")


class _Fixed(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = self.buffer.count(b"\r\n\r\n")  # the benchmark's GETs have no body
        if answers:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * answers)


async def _serve() -> None:
    server = await asyncio.get_running_loop().create_server(_Fixed, "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(_serve())
    else:
        uvloop.run(_serve())


if __name__ == "__main__":
    main()
