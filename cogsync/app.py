"""The ASGI application: HTTP in, protocol -> auth -> service, HTTP out.

A plain ASGI callable (no framework): the request path is short and explicit, and the
blocking store work runs on a thread pool so the event loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from cogsync.accounts import default_account
from cogsync.auth.authenticator import Authenticator
from cogsync.auth.caller import Caller
from cogsync.auth.policy import authorize
from cogsync.auth.rate_limits import RateLimits
from cogsync.components import Components, build_components
from cogsync.config import Settings, settings_from_json
from cogsync.console.rates import RequestRates
from cogsync.console.routes import Console
from cogsync.controls.routes import CONTROLS_PATH, TestControls, controls_off
from cogsync.errors import (
    InternalError,
    InvalidParameter,
    NotAuthorized,
    ServiceError,
    StorageFull,
    UnknownOperation,
)
from cogsync.http_cors import CorsPolicy
from cogsync.http_live import LIVE_PATH, LiveChannel
from cogsync.identity.operations import HANDLERS as IDENTITY_HANDLERS
from cogsync.identity.web_identity import WebIdentityService
from cogsync.logs import fields
from cogsync.metrics_endpoint import METRICS_PATH, MetricsEndpoint
from cogsync.protocol import numbers
from cogsync.protocol.model import (
    IDENTITY_SERVICE,
    SYNC_SERVICE,
    identity_model,
    sync_model,
)
from cogsync.protocol.query import is_query_request
from cogsync.protocol.responses import HttpResponse, render_error, render_result
from cogsync.protocol.routing import HttpRequest, Router, build_input
from cogsync.request_log import RequestInfo, finish, start
from cogsync.runtime import Runtime
from cogsync.store.engine import head_revision, is_storage_full
from cogsync.sts_endpoint import StsEndpoint
from cogsync.sync.operations import HANDLERS

log = logging.getLogger("cogsync")

SYNC_TARGET_PREFIX = "com.amazonaws.cognito.sync.model.AWSCognitoSyncService"
IDENTITY_TARGET_PREFIX = "AWSCognitoIdentityService"
SETTINGS_VARIABLE = "COGSYNC_WORKER_SETTINGS"
HEALTH_PATH = "/_cogsync/health"
READY_PATH = "/_cogsync/ready"
READY_TIMEOUT_SECONDS = 3.0
STORAGE_FULL_MESSAGE = (
    "The service cannot store data right now: its disk is full. Nothing was changed; "
    "retry later (the operator has been told)."
)
JWKS_PATHS = ("/.well-known/jwks.json", "/.well-known/jwks_uri")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client left before its request was whole: there is no one to answer."""


class CogsyncApp:
    def __init__(self, components: Components, *, flush_interval: float = 1.0):
        self.c = components
        self.settings = settings = components.settings
        self.runtime = runtime = Runtime(components, flush_interval=flush_interval)
        self.model = sync_model()
        self.router = Router(self.model, (SYNC_TARGET_PREFIX,))
        self.identity_model = identity_model()
        self.identity_router = Router(self.identity_model, (IDENTITY_TARGET_PREFIX,))
        self._in_thread = runtime.in_thread
        self._store_work = runtime.store_work
        self._authenticate = Authenticator(
            components.keyring, components.credentials, settings.region, runtime.store_work,
            open_mode=settings.open_mode,
            default_account=lambda: runtime.in_thread(default_account, components.store),
        )
        self.sts = StsEndpoint(
            WebIdentityService(components.store, components.signer, components.credentials),
            self._authenticate,
            self._in_thread,
        )
        self.live = LiveChannel(runtime.live, self.model, components.service,
                                self._authenticate, self._in_thread)
        self.rate_limits = RateLimits(settings.rate_limit_identity, settings.rate_limit_pool)
        self._head_revision = head_revision()
        self.cors = CorsPolicy(settings.cors_origins, open_mode=settings.open_mode)
        self.access_log = settings.access_log
        self.metrics = MetricsEndpoint(components.store, settings.metrics_token,
                                       self._in_thread)
        self.controls = (
            TestControls(components, (self.model, self.identity_model), self._authenticate,
                         self._store_work)
            if settings.test_controls else None
        )
        self.console: Console | None = None
        if settings.console:
            self.console = Console(components, self._in_thread, runtime.dispatcher.wake,
                                   RequestRates(self.metrics.process))

    # --- ASGI ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.runtime.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS" and await self.cors.answer_preflight(scope, send):
            return  # a CORS preflight, answered for every route alike
        send = self.cors.sending(scope, send)  # CORS headers on every answer, streams too
        request_id = new_request_id()
        client = scope.get("client")
        info = start(request_id, scope["method"], scope["path"], client and client[0])
        try:
            request = await self._read_request(scope, receive)
            path = request.raw_path
            if path in (HEALTH_PATH, READY_PATH):
                info.operation = path.rsplit("/", 1)[1]
                response = await self._health(request)
            elif path == METRICS_PATH:
                info.operation = "metrics"
                response = await self.metrics.handle(request, info.client)
            elif path in JWKS_PATHS and request.method == "GET":
                info.operation = "jwks"
                response = render_result(self.c.signer.jwks)
            elif path == LIVE_PATH and request.method == "GET":
                info.operation = "live"
                await self.live.serve(request, receive, send, request_id)
                finish(info, 200, None, self.access_log)  # when the stream ends
                return
            elif is_query_request(request):
                info.service = "sts"
                response = await self.sts.handle(request, request_id)
            elif self.console is not None and self.console.serves(path):
                info.operation = "console"
                response = await self.console.handle(request)
            elif path.startswith(CONTROLS_PATH):
                info.operation = "test-controls"
                if self.controls is None:
                    raise controls_off()
                response = await self.controls.handle(request)
            elif request.headers.get("x-amz-target", "").startswith(IDENTITY_TARGET_PREFIX):
                info.service = "cognito-identity"
                response = await self._dispatch_identity(request, info)
            else:
                info.service = "cognito-sync"
                response = await self._dispatch(request, info)
        except ClientGone:
            return
        except BodyTooLarge:
            response = render_error(
                InvalidParameter(
                    f"The request body is larger than {self.settings.max_body_bytes} bytes"
                ),
                self.model,
            )
        except ServiceError as error:
            response = render_error(error, self.model)
        except Exception as exc:
            if is_storage_full(exc):
                log.error("STORAGE FULL: the database has no space left (%s); writes are "
                          "refused with 503 until the operator frees space", exc)
                response = render_error(StorageFull(STORAGE_FULL_MESSAGE), self.model)
            else:
                log.exception("unexpected error in request %s", request_id,
                              extra=fields(request_id=request_id, operation=info.operation))
                response = render_error(InternalError("An internal error occurred"), self.model)
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", b"%d" % len(response.body)),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        error_code = info.error_code
        for k, v in response.headers:
            headers.append((k.encode(), v.encode()))
            if k == "x-amzn-errortype":
                error_code = v
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        finish(info, response.status, error_code, self.access_log)

    async def _health(self, request: HttpRequest) -> HttpResponse:
        """Liveness (the process answers) or readiness (the database answers and its
        schema is the one this code expects); GET or HEAD only."""
        if request.method not in ("GET", "HEAD"):
            body = b'{"status":"method not allowed","allowed":["GET","HEAD"]}'
            return HttpResponse(405, body, (("allow", "GET, HEAD"),))
        if request.raw_path == HEALTH_PATH:
            return HttpResponse(200, b'{"status":"ok"}')
        try:
            problem = await asyncio.wait_for(
                self._in_thread(self._readiness), READY_TIMEOUT_SECONDS
            )
        except TimeoutError:
            problem = f"the database did not answer within {READY_TIMEOUT_SECONDS:g} s"
        if problem is None:
            return HttpResponse(200, b'{"status":"ready"}')
        log.warning("not ready: %s", problem)
        return HttpResponse(503, orjson.dumps({"status": "not ready", "reason": problem}))

    def _readiness(self) -> str | None:
        try:
            revision = self.c.store.schema_revision()
        except Exception as exc:
            return f"the database does not answer: {type(exc).__name__}: {exc}".splitlines()[0]
        if revision != self._head_revision:
            expected = self._head_revision
            return f"the database schema is at {revision}; this server expects {expected}"
        return None

    async def _read_request(self, scope: Scope, receive: Receive) -> HttpRequest:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # ASGI: names in lower case
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        limit = self.settings.max_body_bytes
        declared = numbers.unsigned(headers.get("content-length", ""))
        if declared is not None and declared > limit:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if "?" in raw_path:
            raw_path = raw_path.split("?", 1)[0]
        query_string = scope.get("query_string")
        query = (parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
                 if query_string else [])
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return HttpRequest(scope["method"], raw_path, query, headers, body)

    # --- protocol -> auth -> service ----------------------------------------------

    async def _dispatch_identity(self, request: HttpRequest, info: RequestInfo) -> HttpResponse:
        """Cognito Identity (JSON 1.1); its errors carry its own model's statuses."""
        try:
            route = self.identity_router.match(request)
            operation = route.operation
            info.operation = operation.name
            handler = IDENTITY_HANDLERS.get(operation.name)
            caller: Caller | None = None
            if not operation.unsigned:
                caller = await self._authenticate(request, IDENTITY_SERVICE)
                if not caller.is_developer:
                    raise NotAuthorized(
                        f"{operation.name} can only be called with developer credentials"
                    )
            params = build_input(route, request)
            if self.controls is not None:
                await self.controls.intercept(IDENTITY_SERVICE, operation.name, caller, params,
                                              request)
            if handler is None:
                raise ServiceError(
                    f"{operation.name} is not available in this version of cogsync",
                    code="NotImplementedException",
                    status=501,
                )
            result = await self._in_thread(handler, self.c.identity, caller, params)
            response = render_result(result)
        except UnknownOperation as error:
            return render_error(error, self.identity_model)
        except ServiceError as error:
            return render_error(error, self.identity_model)
        return HttpResponse(
            response.status, response.body, content_type="application/x-amz-json-1.1"
        )

    async def _dispatch(self, request: HttpRequest, info: RequestInfo) -> HttpResponse:
        route = self.router.match(request)
        info.operation = route.operation.name
        caller = await self._authenticate(request, SYNC_SERVICE)
        params = build_input(route, request)
        authorize(caller, route.operation.name, params)
        if self.controls is not None:
            await self.controls.intercept(SYNC_SERVICE, route.operation.name, caller, params,
                                          request)
        self.rate_limits.check(
            params.get("IdentityPoolId"), params.get("IdentityId") or caller.identity_id
        )
        handler = HANDLERS.get(route.operation.name)
        if handler is None:
            raise ServiceError(
                f"{route.operation.name} is not available in this version of cogsync",
                code="NotImplementedException",
                status=501,
            )
        # An identity's UpdateRecords may wait up to seconds on its Sync Trigger function.
        may_block = route.operation.name == "UpdateRecords" and not caller.is_developer
        result = await self._store_work(handler, self.c.service, caller, params, blocking=may_block)
        await self.c.store.durable()  # nothing is acknowledged before it is committed
        return render_result(result)


def new_request_id() -> str:
    """A random UUID (version 4), as AWS's request ids are; formatted directly, without
    uuid.UUID's object (a third of the bare endpoint's cost in the app)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def create_app(settings: Settings) -> CogsyncApp:
    return CogsyncApp(build_components(settings))


def app_from_environment() -> CogsyncApp:
    """The app of one worker process of ``cogsync serve --workers N``."""
    settings = settings_from_json(os.environ[SETTINGS_VARIABLE])
    return CogsyncApp(build_components(settings, run_migrations=False))
