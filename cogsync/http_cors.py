"""CORS at the HTTP edge: web pages on other origins are first-class clients.

Applied once, where the app takes each HTTP request, so every route (Cognito Sync in
both protocols, Cognito Identity, the live channel, JWKS, health, and any added later)
answers alike:

- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an
  allowed origin gets 200 with the methods, the request headers the SDKs send (and any
  other well-formed names the browser asks for, as AWS's endpoints echo them) and a
  max-age; from any other origin it gets 403 and no CORS headers, so the browser refuses;
- every other response, errors and event streams included, carries
  ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers`` when the origin is
  allowed, and nothing CORS otherwise (the request itself is served as always).

Requests are authorized by their SigV4 signature, never by cookies, so no
``Access-Control-Allow-Credentials`` is ever sent (see docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.config import ANY_ORIGIN as ANY
from cogsync.config import NO_ORIGIN as NONE

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# What the AWS SDKs for JavaScript send on cross-origin calls (v2 sends
# x-amz-content-sha256 even on unsigned GetId; v3 adds amz-sdk-invocation-id/-request).
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-target",
    "x-amz-user-agent",
    "x-amz-content-sha256",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
)
# Every method the two service models and the live channel use.
ALLOWED_METHODS = ("GET", "POST", "DELETE")
# What AWS's JSON endpoints expose; the SDKs read the request id, the error type, and
# Date to correct a skewed clock.
EXPOSED_HEADERS = ("x-amzn-RequestId", "x-amzn-ErrorType", "x-amzn-ErrorMessage", "Date")
MAX_AGE_SECONDS = 172800  # AWS's; browsers cap it (Chromium at two hours)

_LOOPBACK = re.compile(r"https?://(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_ALLOWED_HEADER_SET = frozenset(ALLOWED_HEADERS)
_EXPOSE = (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())
_VARY_ORIGIN = (b"vary", b"Origin")
_VARY_PREFLIGHT = b"Origin, Access-Control-Request-Headers"


class CorsPolicy:
    """Which origins may read cogsync's answers, and the headers that say so.

    ``origins``: ``("*",)``, ``("none",)`` or a tuple of origins; None is the default,
    any origin, except in open mode (no authentication), where only pages on this
    machine (localhost, 127.0.0.1, [::1], any port) are let in."""

    def __init__(self, origins: tuple[str, ...] | None, *, open_mode: bool = False) -> None:
        self.any = origins == (ANY,) or (origins is None and not open_mode)
        self.loopback = origins is None and open_mode
        self.origins = frozenset(o for o in origins or () if o not in (ANY, NONE))
        self._any_headers: Headers = [(b"access-control-allow-origin", b"*"), _EXPOSE]

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        origin = origin.lower()
        if self.loopback:
            return _LOOPBACK.fullmatch(origin) is not None
        return origin in self.origins

    async def answer_preflight(self, scope: Scope, send: Send) -> bool:
        """Answers a preflight (for an ``OPTIONS`` request); False if it is none."""
        origin, requested = _preflight(scope)
        if origin is None:
            return False
        if self.allows(origin):
            await _respond(send, 200, self._preflight_headers(origin, requested), b"")
        else:
            body = (
                b'{"__type":"AccessDeniedException",'
                b'"message":"This origin may not call this server (see --cors-origins)"}'
            )
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-errortype", b"AccessDeniedException"),
                (b"vary", _VARY_PREFLIGHT),
            ]
            await _respond(send, 403, headers, body)
        return True

    def sending(self, scope: Scope, send: Send) -> Send:
        """``send`` with the CORS headers this request's answer gets added to it."""
        if self.any:
            return _adding(self._any_headers, send)
        origin = _header(scope, b"origin")
        extra = (
            [(b"access-control-allow-origin", origin.encode("latin-1")), _EXPOSE, _VARY_ORIGIN]
            if origin is not None and self.allows(origin)
            else [_VARY_ORIGIN]
        )
        return _adding(extra, send)

    def _preflight_headers(self, origin: str, requested: str) -> Headers:
        names = list(ALLOWED_HEADERS)
        for name in requested.lower().split(","):
            name = name.strip()
            if name and name not in _ALLOWED_HEADER_SET and _TOKEN.fullmatch(name):
                names.append(name)
        return [
            (b"access-control-allow-origin", b"*" if self.any else origin.encode("latin-1")),
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(names).encode()),
            (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
            _EXPOSE,
            (b"vary", _VARY_PREFLIGHT),
            (b"content-length", b"0"),
        ]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _preflight(scope: Scope) -> tuple[str | None, str]:
    """(Origin, Access-Control-Request-Headers) of a preflight; (None, "") otherwise."""
    origin = method = None
    requested: list[str] = []
    for key, value in scope["headers"]:
        key = key.lower()
        if key == b"origin":
            origin = value.decode("latin-1")
        elif key == b"access-control-request-method":
            method = value
        elif key == b"access-control-request-headers":
            requested.append(value.decode("latin-1"))
    if origin is None or method is None:
        return None, ""
    return origin, ",".join(requested)


def _adding(extra: Headers, send: Send) -> Send:
    """``send`` that adds ``extra`` to the headers of the answer's start. A plain function
    returning ``send``'s awaitable, changing the message in place (as ASGI middleware
    may): this runs on every request, and a coroutine or a copy costs more."""

    def sending(message: dict[str, Any]) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        return send(message)

    return sending


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
