"""HTTP/1.1 request heads and chunked bodies, parsed strictly (RFC 9112).

Strict on purpose: what two parsers could read differently (two lengths, a length and
chunked coding, obsolete line folding, spaces before a colon, control characters) is
refused with a 400 rather than guessed, so that no proxy in front of cogsync can disagree
with it about where a request ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Byte classes, checked with bytes.translate (C speed; a regular expression over a 1 KB
# head cost more than the rest of the server's work on a request).
_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VISIBLE = bytes(range(0x21, 0x7F))
# Field values: visible ASCII, spaces and tabs, and bytes past ASCII (obs-text); no CTLs.
_FIELD_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_ABSOLUTE = re.compile(rb"https?://[^/?#]*(/[\x21-\x7e]*)?", re.IGNORECASE)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[\x20-\x7e\t]*)?")
VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/1.0": "1.0"}


class BadRequest(Exception):
    """A request that cannot be served: answered with ``status``, then the connection
    closes (after a refused request nothing on the connection can be trusted)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Head:
    method: str
    raw_path: bytes
    query_string: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]  # names in lower case, in order
    content_length: int | None  # None: chunked, or no body
    chunked: bool
    keep_alive: bool
    expect_continue: bool


def parse_head(head: bytes, max_request_line: int, max_headers: int) -> Head:
    """One request head, without its final empty line (``head`` ends before CRLFCRLF)."""
    end = head.find(b"\r\n")
    line = head if end < 0 else head[:end]
    if len(line) > max_request_line:
        raise BadRequest(414, f"The request line is longer than {max_request_line} bytes")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise BadRequest(400, "The request line is not 'METHOD target HTTP/1.1'")
    method, target, version = parts
    http_version = VERSIONS.get(version)
    if http_version is None:
        raise BadRequest(505 if version.startswith(b"HTTP/") else 400,
                         "Only HTTP/1.1 and HTTP/1.0 are served")
    if not method or method.translate(None, _TOKEN_BYTES):
        raise BadRequest(400, "The request method is not a token")
    if (target[:1] != b"/" or target.translate(None, _VISIBLE)) and target != b"*":
        absolute = _ABSOLUTE.fullmatch(target)
        if absolute is None:
            raise BadRequest(400, "The request target is not a path of visible ASCII")
        target = absolute.group(1) or b"/"
    raw_path, _, query_string = target.partition(b"?")

    headers: list[tuple[bytes, bytes]] = []
    if end >= 0:
        block = head[end + 2:]
        lines = block.split(b"\r\n")
        if len(lines) > max_headers:
            raise BadRequest(431, f"The request has more than {max_headers} header fields")
        # Every byte is allowed, and CR and LF come only as the CRLFs between the fields.
        if block.translate(None, _FIELD_BYTES) != b"\r\n" * (len(lines) - 1):
            raise BadRequest(400, "A header field has a control character")
        names = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not name:
                raise BadRequest(400, "A header field is malformed (or folded)")
            names.append(name)
            headers.append((name.lower(), value.strip(b" \t")))
        # Not a token before a colon: folded, spaced before the colon. (One pass for all.)
        if b"".join(names).translate(None, _TOKEN_BYTES):
            raise BadRequest(400, "A header field is malformed (or folded)")

    content_length: int | None = None
    chunked = False
    hosts = 0
    connection = b""
    expect = b""
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit() or len(value) > 18:  # bytes.isdigit(): ASCII only
                raise BadRequest(400, "Content-Length is not a number of ASCII digits")
            length = int(value)
            if content_length is not None and length != content_length:
                raise BadRequest(400, "The request has two different Content-Length fields")
            content_length = length
        elif name == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise BadRequest(501 if not chunked else 400,
                                 "Transfer-Encoding other than one 'chunked' is not served")
            chunked = True
        elif name == b"host":
            hosts += 1
        elif name == b"connection":
            connection += b"," + value.lower()
        elif name == b"expect":
            expect = value.lower()
    if chunked and content_length is not None:
        raise BadRequest(400, "The request has both Content-Length and Transfer-Encoding")
    if http_version == "1.1" and hosts != 1:
        raise BadRequest(400, "An HTTP/1.1 request has exactly one Host header field")
    if expect and expect != b"100-continue":
        raise BadRequest(417, "Only 'Expect: 100-continue' is served")
    tokens = {t.strip() for t in connection.split(b",")}
    keep_alive = b"close" not in tokens if http_version == "1.1" else b"keep-alive" in tokens
    return Head(method.decode("ascii"), raw_path, query_string, http_version, headers,
                content_length, chunked, keep_alive, bool(expect) and http_version == "1.1")


class ChunkedDecoder:
    """Decodes a chunked body as it arrives; trailers are read and dropped."""

    __slots__ = ("_need", "_state", "_trailer_bytes", "max_line", "done")

    def __init__(self, max_line: int):
        self.max_line = max_line
        self._state = "size"  # size | data | data-end | trailer
        self._need = 0
        self._trailer_bytes = 0
        self.done = False

    def feed(self, buffer: bytearray) -> bytes:
        """Consumes what it can from ``buffer``; returns the body bytes decoded."""
        out = bytearray()
        while buffer and not self.done:
            if self._state == "data":
                piece = buffer[: self._need]
                del buffer[: len(piece)]
                out += piece
                self._need -= len(piece)
                if self._need == 0:
                    self._state = "data-end"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > self.max_line:
                    raise BadRequest(400, "A chunk size line is too long")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == "data-end":
                if line:
                    raise BadRequest(400, "A chunk does not end where its size says")
                self._state = "size"
            elif self._state == "size":
                match = _CHUNK_SIZE.fullmatch(line)
                if match is None:
                    raise BadRequest(400, "A chunk size is not hexadecimal")
                self._need = int(match.group(1), 16)
                self._state = "data" if self._need else "trailer"
            else:  # trailer fields, up to an empty line
                self._trailer_bytes += len(line) + 2
                if self._trailer_bytes > self.max_line:
                    raise BadRequest(431, "The chunked body's trailer is too large")
                if not line:
                    self.done = True
        return bytes(out)
