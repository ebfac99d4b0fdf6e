"""Serving an ASGI application on a listening socket, from start-up to a graceful stop.

Order of events: the application's lifespan start-up completes, then connections are
accepted. On SIGTERM or SIGINT: no new connections, idle ones close, requests in flight
finish (their answers end the connection), streamed answers end, then after at most
``graceful_timeout`` whatever remains is cut; then the lifespan shutdown runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.config import HttpLimits
from cogsync.http.connection import ASGI, Cycle, HttpConnection, error_response

log = logging.getLogger("cogsync.http")

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class LifespanFailed(Exception):
    pass


class Lifespan:
    """The ASGI lifespan protocol, driven from the server's side."""

    def __init__(self, app: App):
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            await self.app({"type": "lifespan", "asgi": ASGI, "state": {}},
                           self.inbox.get, self.outbox.put)
        except Exception as exc:
            log.exception("the application's lifespan failed")
            await self.outbox.put({"type": "lifespan.failed", "message": str(exc)})

    async def startup(self) -> None:
        self.task = asyncio.create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        answer = await self.outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise LifespanFailed(answer.get("message") or "the application did not start")

    async def shutdown(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        answer = await self.outbox.get()
        if answer["type"] != "lifespan.shutdown.complete":
            log.error("the application's shutdown failed: %s", answer.get("message"))
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 5)


class HttpServer:
    """Accepts connections on one socket and runs the application on their requests."""

    def __init__(self, app: App, limits: HttpLimits):
        self.app = app
        self.limits = limits
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.connections: set[HttpConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.draining = False
        self.lifespan = Lifespan(app)
        self._listener: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        await self.lifespan.startup()
        self._listener = await self.loop.create_server(
            lambda: HttpConnection(self), sock=sock, backlog=2048)
        self._sweeper = asyncio.create_task(self._sweep())

    def run(self, conn: HttpConnection, cycle: Cycle, scope: dict[str, Any]) -> None:
        task = self.loop.create_task(self._call(conn, cycle, scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(self, conn: HttpConnection, cycle: Cycle, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, cycle.receive, cycle.send)
        except Exception:
            log.exception("the application failed on %s %s", scope["method"], scope["path"])
        if cycle.response_done or conn.phase == "closed":
            return
        if cycle.started or cycle.disconnected:
            if not conn.end_drained(cycle):
                conn.transport.abort()  # an answer cut short must not look complete
        else:
            cycle.response_done = True
            conn.write(error_response(500, "An internal error occurred"))
            conn.linger()

    async def _sweep(self) -> None:
        """Enforces every connection's deadline; cheaper than a timer per request."""
        limits = self.limits
        tick = max(0.05, min(1.0, limits.header_timeout / 4, limits.body_timeout / 4,
                             limits.keep_alive_timeout / 4))
        while True:
            await asyncio.sleep(tick)
            now = self.loop.time()
            for conn in list(self.connections):
                conn.check_deadline(now)

    async def shutdown(self, graceful_timeout: float) -> None:
        self.draining = True
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections):
            conn.shutdown()
        deadline = self.loop.time() + graceful_timeout
        while (self.connections or self.tasks) and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
            for conn in list(self.connections):
                conn.shutdown()  # answers finished meanwhile: close their connections
        for conn in list(self.connections):
            conn.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.lifespan.shutdown()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


async def serve(app: App, sock: socket.socket, limits: HttpLimits, *,
                graceful_timeout: float = 30.0,
                on_ready: Callable[[], None] | None = None) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully."""
    server = HttpServer(app, limits)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start(sock)
    if on_ready is not None:
        on_ready()
    await stop.wait()
    await server.shutdown(graceful_timeout)


def run(main: Awaitable[None]) -> None:
    """Runs ``main`` on uvloop where it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(main)  # type: ignore[arg-type]
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)  # type: ignore[arg-type]
