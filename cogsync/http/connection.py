"""One client connection: bytes in, ASGI requests out, one request at a time.

The head of a request is gathered in a buffer and parsed only once it is complete, so
its cost is linear and bounded by the header limit: a client offering more is answered
431 (or 414) and dropped at once, without anything buffered past the limit. Each
connection is in one phase, and each phase but the application's has a deadline that the
server checks once a second:

- ``idle``: between requests (the keep-alive timeout) - closed silently;
- ``head``: a request has begun (or the connection has just opened) - 408, then closed;
- ``body``: the head is in, the body is not - 408 (if nothing was answered yet), closed;
- ``app``: the application holds the request - no deadline; but a response it cannot
  send because the client reads nothing gets the body timeout, then the connection drops.

A client that half-closes after a complete request still gets its answer; the
connection closes after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cogsync.http.parsing import BadRequest, ChunkedDecoder, Head, parse_head
from cogsync.logs import fields
from cogsync.metrics import HTTP_REFUSALS, child

if TYPE_CHECKING:
    from cogsync.http.server import HttpServer

log = logging.getLogger("cogsync.http")

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 303: "See Other",
    304: "Not Modified",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    413: "Content Too Large", 414: "URI Too Long", 417: "Expectation Failed",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    507: "Insufficient Storage",
}
ERROR_CODES = {400: "BadRequest", 408: "RequestTimeout", 414: "RequestURITooLong",
               417: "ExpectationFailed", 431: "RequestHeaderFieldsTooLarge",
               500: "InternalFailure", 501: "NotImplemented",
               505: "HTTPVersionNotSupported"}
BODY_HIGH_WATER = 1024 * 1024  # unread request body bytes before reading pauses
LINGER_SECONDS = 2.0  # after a refusal: how long unread input is drained before closing
LINGER_BYTES = 1024 * 1024

_date_cache: list[Any] = [0, b""]


def date_header() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True).encode()
    return _date_cache[1]  # type: ignore[no-any-return]


def error_response(status: int, message: str) -> bytes:
    """A refusal from the edge itself, in the shape of the AWS errors."""
    code = ERROR_CODES.get(status, "BadRequest")
    body = b'{"__type":"%s","message":"%s"}' % (code.encode(), message.replace(
        '"', "'").encode())
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nx-amzn-errortype: %s\r\n" \
           b"content-length: %d\r\nconnection: close\r\ndate: %s\r\n\r\n%s" % (
               status, REASONS.get(status, "Error").encode(), code.encode(), len(body),
               date_header(), body)


def _decoded(path: str) -> str:
    """The path percent-decoded, as ASGI's ``path``; the ``%3A`` in the SDKs' paths (pool
    and identity ids) without urllib's general decoder, which costs far more."""
    if path.count("%") == path.count("%3A"):
        return path.replace("%3A", ":")
    return unquote(path)


ASGI = {"version": "3.0", "spec_version": "2.3"}
INFINITY = float("inf")


class Cycle:
    """One request and its response, as the ASGI application sees them."""

    __slots__ = ("body", "body_done", "body_given", "chunked_out", "conn", "continue_sent",
                 "disconnected", "drained", "head", "headers_out", "keep_alive",
                 "response_done", "started", "status", "waiter")

    def __init__(self, conn: HttpConnection, head: Head):
        self.conn = conn
        self.head = head
        self.body = bytearray()
        self.body_done = False  # every byte of the request body has arrived
        self.body_given = False  # ... and the application has had the last of them
        self.disconnected = False
        self.drained = False  # ended by the server's graceful stop, not by the client
        self.continue_sent = not head.expect_continue
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.response_done = False
        self.chunked_out = False
        self.keep_alive = head.keep_alive
        self.status = 0
        self.headers_out: Any = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected or self.response_done:
                return {"type": "http.disconnect"}
            if not self.body_given:
                if self.body or self.body_done:
                    chunk = bytes(self.body)
                    self.body.clear()
                    self.body_given = self.body_done
                    self.conn.body_consumed()
                    return {"type": "http.request", "body": chunk,
                            "more_body": not self.body_done}
                if not self.continue_sent:
                    self.continue_sent = True
                    self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiter = self.conn.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.disconnected:
            return
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("the response was already started")
            self.started = True
            self.continue_sent = True  # a final answer instead of 100 Continue
            self.status = int(message["status"])
            self.headers_out = message.get("headers", ())
            return
        if kind != "http.response.body" or not self.started or self.response_done:
            raise RuntimeError(f"unexpected ASGI message {kind}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        out = b""
        if self.headers_out is not None:
            out = self._head(body, more)
            self.headers_out = None
        if self.head.method != "HEAD":
            if self.chunked_out:
                if body:
                    out += b"%x\r\n%s\r\n" % (len(body), body)
                if not more:
                    out += b"0\r\n\r\n"
            else:
                out += body
        conn = self.conn
        if out:
            conn.write(out)
        if not more:
            self.response_done = True
            conn.response_done(self)
        elif conn.writing_paused:
            await conn.drain()

    def _head(self, body: bytes, more: bool) -> bytes:
        parts = [b"HTTP/1.1 %d %s\r\n" % (self.status, REASONS.get(self.status, "").encode())]
        length_given = False
        for name, value in self.headers_out:
            lower = name.lower()
            if lower == b"content-length":
                length_given = True
            elif lower == b"connection":
                if b"close" in value.lower():
                    self.keep_alive = False
                continue
            elif lower == b"transfer-encoding":
                continue  # the framing is the server's
            parts.append(b"%s: %s\r\n" % (name, value))
        if not length_given:
            if not more:
                parts.append(b"content-length: %d\r\n" % len(body))
            elif self.head.http_version == "1.1":
                self.chunked_out = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # HTTP/1.0: the close ends the body
        if self.conn.server.draining:
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.head.http_version == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"date: %s\r\n\r\n" % date_header())
        return b"".join(parts)


class HttpConnection(asyncio.Protocol):
    """The protocol of one accepted socket (see the module's docstring)."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.limits = server.limits
        self.loop = server.loop
        self.transport: Any = None
        self.buffer = bytearray()
        self.scanned = 0  # how much of the buffer is known to hold no end of head
        self.phase = "idle"
        self.deadline = INFINITY
        self.cycle: Cycle | None = None
        self.decoder: ChunkedDecoder | None = None
        self.remaining = 0
        self.eof = False
        self.reading_paused = False
        self.writing_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.lingered = 0
        self.client: Any = None
        self.sockname: Any = None

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.client = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.server.connections.add(self)
        self.deadline = self.loop.time() + self.limits.keep_alive_timeout

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == "linger":
            self.lingered += len(data)
            if self.lingered > LINGER_BYTES:
                self.transport.abort()
            return
        self.buffer += data
        if phase == "idle":
            self.phase = "head"
            self.deadline = self.loop.time() + self.limits.header_timeout
        elif phase == "app":
            # A pipelined request waits for the current answer; only so much of it.
            if len(self.buffer) > self.limits.max_header_bytes:
                self._pause_reading()
            return
        self._advance()

    def eof_received(self) -> bool:
        self.eof = True
        if self.phase == "app":
            return True  # keep the connection open to answer the request
        cycle = self.cycle
        if cycle is not None and not cycle.response_done:
            cycle.disconnected = True  # the body can no longer arrive
            cycle.wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = "closed"
        self.deadline = INFINITY
        self.server.connections.discard(self)
        cycle = self.cycle
        if cycle is not None and not cycle.response_done:
            cycle.disconnected = True
            cycle.wake()
        self._release_drain()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.phase == "app":
            self.deadline = self.loop.time() + self.limits.body_timeout

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.phase == "app":
            self.deadline = INFINITY
        self._release_drain()

    # --- reading -------------------------------------------------------------------------

    def _advance(self) -> None:
        """Parses what the buffer holds in the current phase (heads and bodies)."""
        limits = self.limits
        while True:
            if self.phase == "head":
                buffer = self.buffer
                while buffer[:2] == b"\r\n":  # empty lines before a request are ignored
                    del buffer[:2]
                end = buffer.find(b"\r\n\r\n", max(0, self.scanned - 3))
                if end < 0:
                    self.scanned = len(buffer)
                    if len(buffer) > limits.max_header_bytes:
                        self.refuse(431, "The request head is larger than "
                                         f"{limits.max_header_bytes} bytes")
                    elif len(buffer) > limits.max_request_line and buffer.find(
                            b"\r\n", 0, limits.max_request_line + 2) < 0:
                        self.refuse(414, "The request line is longer than "
                                         f"{limits.max_request_line} bytes")
                    elif self.eof:
                        self.close()
                    elif not buffer:
                        self.phase = "idle"
                        self.deadline = self.loop.time() + limits.keep_alive_timeout
                    return
                if end + 2 > limits.max_header_bytes:
                    self.refuse(431, f"The request head is larger than "
                                     f"{limits.max_header_bytes} bytes")
                    return
                raw = bytes(buffer[:end])
                del buffer[: end + 4]
                self.scanned = 0
                try:
                    head = parse_head(raw, limits.max_request_line, limits.max_headers)
                except BadRequest as refusal:
                    self.refuse(refusal.status, refusal.message)
                    return
                self._start(head)
            elif self.phase == "body":
                self._feed_body()
                return
            else:
                return

    def _start(self, head: Head) -> None:
        cycle = self.cycle = Cycle(self, head)
        if head.chunked:
            self.decoder = ChunkedDecoder(self.limits.max_header_bytes)
            self.phase = "body"
        elif head.content_length:
            self.decoder = None
            self.remaining = head.content_length
            self.phase = "body"
        else:
            cycle.body_done = True
            self.phase = "app"
        self.deadline = (self.loop.time() + self.limits.body_timeout
                         if self.phase == "body" else INFINITY)
        raw_path = head.raw_path
        text = raw_path.decode("ascii")
        scope = {
            "type": "http", "asgi": ASGI, "http_version": head.http_version,
            "method": head.method, "scheme": "http",
            "path": _decoded(text) if "%" in text else text, "raw_path": raw_path,
            "query_string": head.query_string, "root_path": "", "headers": head.headers,
            "client": self.client, "server": self.sockname,
        }
        self.server.run(self, cycle, scope)

    def _feed_body(self) -> None:
        cycle = self.cycle
        assert cycle is not None
        buffer = self.buffer
        if self.decoder is not None:
            try:
                cycle.body += self.decoder.feed(buffer)
            except BadRequest as refusal:
                self.refuse(refusal.status, refusal.message)
                return
            done = self.decoder.done
        else:
            take = min(self.remaining, len(buffer))
            if take == len(buffer):
                cycle.body += buffer
                buffer.clear()
            else:
                cycle.body += buffer[:take]
                del buffer[:take]
            self.remaining -= take
            done = self.remaining == 0
        if done:
            cycle.body_done = True
            self.phase = "app"
            self.deadline = INFINITY if not self.writing_paused else self.deadline
        elif len(cycle.body) > BODY_HIGH_WATER:
            self._pause_reading()
        cycle.wake()

    def body_consumed(self) -> None:
        if self.reading_paused and self.phase == "body":
            self._resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    # --- writing -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.phase != "closed":
            self.transport.write(data)

    async def drain(self) -> None:
        if self.writing_paused and self.phase != "closed":
            self.drain_waiter = self.loop.create_future()
            await self.drain_waiter

    def _release_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.drain_waiter = None

    def response_done(self, cycle: Cycle) -> None:
        """The application has sent its whole answer: on to the next request, or close.
        (The application logs its requests: it knows their operation and caller.)"""
        if self.phase == "closed":
            return
        if not cycle.body_done:
            self.linger()  # the unread rest of the body would be taken for a request
            return
        self.cycle = None
        if not cycle.keep_alive or self.server.draining:
            self.close()
            return
        self.phase = "head"
        self.deadline = self.loop.time() + self.limits.header_timeout
        self._resume_reading()
        self._advance()

    def refuse(self, status: int, message: str) -> None:
        """Answers a request the edge cannot serve, then closes the connection."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_done:
            cycle.disconnected = True
            cycle.wake()
            if cycle.started:
                self.transport.abort()
                return
        client = self.client and self.client[0]
        log.info("refused a request from %s: %d %s", client, status, message,
                 extra=fields(status=status, reason=message, client=client))
        child(HTTP_REFUSALS, str(status)).inc()
        self.write(error_response(status, message))
        self.linger()

    def linger(self) -> None:
        """Closes for writing, then drains what the client still sends for a moment, so
        that the answer is not lost to a reset caused by unread input."""
        self.phase = "linger"
        self.buffer.clear()
        self.deadline = self.loop.time() + LINGER_SECONDS
        self._resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.close()

    def close(self) -> None:
        if self.phase != "closed":
            self.transport.close()

    def end_drained(self, cycle: Cycle) -> bool:
        """A streamed answer the graceful stop ended: its chunked body gets its proper
        end, so that the client sees a whole answer (and reconnects elsewhere); False if
        it cannot have one."""
        if not cycle.drained or not cycle.chunked_out or cycle.headers_out is not None:
            return False
        cycle.response_done = True
        self.write(b"0\r\n\r\n")
        self.close()
        return True

    # --- deadlines and shutdown ------------------------------------------------------------

    def check_deadline(self, now: float) -> None:
        if now < self.deadline:
            return
        self.deadline = INFINITY
        phase = self.phase
        if phase == "idle" or phase == "linger":
            self.close()
        elif phase == "head":
            self.refuse(408, "The request head did not arrive in time")
        elif phase == "body":
            cycle = self.cycle
            if cycle is not None and cycle.started:
                self.transport.abort()
            else:
                self.refuse(408, "The request body did not arrive in time")
        else:  # the client reads nothing of the answer
            self.transport.abort()

    def shutdown(self) -> None:
        """The server is draining: idle connections close, answers end with a close, and
        streamed answers that only wait for the client end now."""
        if self.phase == "idle" or (self.phase == "head" and not self.buffer):
            self.close()
            return
        cycle = self.cycle
        if cycle is not None and cycle.started and cycle.body_given and cycle.waiter:
            cycle.disconnected = True
            cycle.drained = True
            cycle.wake()
