"""What the HTTP edge learns about one request, for its metrics and its access-log line.

The app opens a :class:`RequestInfo` when a request arrives (:data:`CURRENT` holds it for
the request's task); routing and authentication fill in the operation and the caller;
when the answer is sent, :func:`finish` counts the request and logs it, once. The line is
written for every request with ``--access-log``, and without it for requests whose
signature was refused (with the reason: an operator must be able to see why a client is
turned away). What goes in is never secret: no signature, secret key, session token or
query string (a presigned URL carries its signature there).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

from cogsync.auth.caller import Caller
from cogsync.logs import fields
from cogsync.metrics import count_request

log = logging.getLogger("cogsync.access")


class RequestInfo:
    """What is known of one request so far. (A plain class whose defaults are class
    attributes: made for every request, it sets only what differs.)"""

    service = "cogsync"
    operation = "unknown"
    credentials = "none"  # developer, identity or none (unsigned or refused)
    account: str | None = None
    pool: str | None = None
    identity: str | None = None
    access_key: str | None = None
    reason: str | None = None  # why the signature was refused
    error_code: str | None = None  # when the answer carries it in its body only (STS)

    def __init__(self, request_id: str, method: str, path: str, client: str | None,
                 started: float):
        self.request_id = request_id
        self.method = method
        self.path = path
        self.client = client
        self.started = started

    def called_by(self, caller: Caller) -> None:
        self.credentials = "developer" if caller.is_developer else "identity"
        self.account = caller.account_id
        self.pool = caller.identity_pool_id
        self.identity = caller.identity_id


CURRENT: ContextVar[RequestInfo | None] = ContextVar("cogsync_request", default=None)


def start(request_id: str, method: str, path: str, client: str | None) -> RequestInfo:
    info = RequestInfo(request_id, method, path, client, time.perf_counter())
    CURRENT.set(info)
    return info


def current() -> RequestInfo | None:
    return CURRENT.get()


def finish(info: RequestInfo, status: int, error_code: str | None, access_log: bool) -> None:
    seconds = time.perf_counter() - info.started
    count_request(info.service, info.operation, status, info.credentials, seconds)
    if not access_log and info.reason is None:
        return
    latency_ms = round(seconds * 1000, 3)
    log.info(
        "%s %s %d %s %.1f ms", info.method, info.path, status, info.operation, latency_ms,
        extra=fields(
            request_id=info.request_id, method=info.method, path=info.path,
            service=info.service, operation=info.operation,
            status=status, error_code=error_code, latency_ms=latency_ms,
            credentials=info.credentials, account=info.account, pool=info.pool,
            identity=info.identity, access_key=info.access_key, client=info.client,
            reason=info.reason,
        ),
    )
