"""The ASGI application: HTTP in, protocol -> auth -> service, HTTP out.

A plain ASGI callable (no framework): the request path is short and explicit, and the
blocking store work runs on a thread pool so the event loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from cogsync.accounts import default_account
from cogsync.auth.caller import Caller
from cogsync.auth.policy import authorize
from cogsync.auth.rate_limits import RateLimits
from cogsync.auth.sigv4 import parse_signed_request, verify
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
    UnrecognizedClient,
)
from cogsync.http_cors import CorsPolicy
from cogsync.identity.operations import HANDLERS as IDENTITY_HANDLERS
from cogsync.identity.web_identity import WebIdentityService
from cogsync.integrations.bulk_publish import BulkPublisher
from cogsync.integrations.dispatcher import Dispatcher
from cogsync.integrations.live import CLOSE as LIVE_CLOSE
from cogsync.integrations.live import LiveBroker
from cogsync.integrations.push import open_push, stored_endpoints
from cogsync.integrations.streams import open_streams
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
from cogsync.protocol.validation import validate
from cogsync.store.engine import head_revision, is_storage_full
from cogsync.sts_endpoint import StsEndpoint
from cogsync.sync.operations import HANDLERS

if TYPE_CHECKING:
    from cogsync.integrations.live_fanout import PostgresFanout

log = logging.getLogger("cogsync")

SYNC_TARGET_PREFIX = "com.amazonaws.cognito.sync.model.AWSCognitoSyncService"
IDENTITY_TARGET_PREFIX = "AWSCognitoIdentityService"
SETTINGS_VARIABLE = "COGSYNC_WORKER_SETTINGS"
HEALTH_PATH = "/_cogsync/health"
READY_PATH = "/_cogsync/ready"
READY_TIMEOUT_SECONDS = 3.0
LIVE_PATH = "/_cogsync/live"
LIVE_HEARTBEAT_SECONDS = 15.0
CHECKPOINT_BUSY_SECONDS = 0.05  # SQLite: how often the log is copied while it grows
CHECKPOINT_IDLE_SECONDS = 1.0
STORAGE_FULL_MESSAGE = (
    "The service cannot store data right now: its disk is full. Nothing was changed; "
    "retry later (the operator has been told)."
)
JWKS_PATHS = ("/.well-known/jwks.json", "/.well-known/jwks_uri")
T = TypeVar("T")

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
        self.settings = components.settings
        self.model = sync_model()
        self.router = Router(self.model, (SYNC_TARGET_PREFIX,))
        self.identity_model = identity_model()
        self.identity_router = Router(self.identity_model, (IDENTITY_TARGET_PREFIX,))
        self.sts = StsEndpoint(
            WebIdentityService(components.store, components.signer, components.credentials),
            self._authenticate,
            self._in_thread,
        )
        # SQLite answers in microseconds and serializes writers anyway: its work runs on
        # the event loop, where 16 threads fighting for the GIL cost five times the
        # throughput. PostgreSQL waits on the network: its work runs on threads.
        self.inline = components.store.dialect == "sqlite"
        self.executor = ThreadPoolExecutor(
            max_workers=4 if self.inline else 16, thread_name_prefix="cogsync-db"
        )
        self.flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        settings = self.settings
        store = components.store
        endpoints = stored_endpoints(store)
        self.dispatcher = Dispatcher(
            store,
            open_streams(settings.resolved_streams_url, settings.region),
            [
                open_push(url, settings.region, endpoints, settings.push_webhook_secret)
                for url in settings.push_urls
            ],
            self.executor,
            max_attempts=settings.outbox_max_attempts,
            base_backoff=settings.outbox_backoff_seconds,
            lease_seconds=settings.lease_seconds,
        )
        self._dispatching: asyncio.Task[None] | None = None
        self.rate_limits = RateLimits(settings.rate_limit_identity, settings.rate_limit_pool)
        self.live = LiveBroker()
        self.fanout: PostgresFanout | None = None
        if store.dialect == "postgresql":
            from cogsync.integrations.live_fanout import PostgresFanout  # needs psycopg

            self.fanout = PostgresFanout(settings.resolved_database_url, self.live)
            components.service.announcers.append(self.fanout.announce)
        else:
            components.service.listeners.append(self.live.publish)
        self.bulk_publisher = BulkPublisher(
            store, self.executor, stale_after=settings.job_stale_seconds
        )
        self._publishing: asyncio.Task[None] | None = None
        components.service.listeners.append(
            lambda change: self.dispatcher.wake() if change.outbox_entries else None
        )
        self._open_caller: Caller | None = None
        self._head_revision = head_revision()
        self.cors = CorsPolicy(settings.cors_origins, open_mode=settings.open_mode)
        self.controls = (
            TestControls(components, (self.model, self.identity_model), self._authenticate,
                         self._store_work)
            if settings.test_controls else None
        )
        self.console: Console | None = None
        if settings.console:
            self.console = Console(components, self._in_thread, self.dispatcher.wake,
                                   RequestRates())

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _store_work(self, fn: Callable[..., T], *args: Any, blocking: bool = False) -> T:
        """Store-bound work: inline on SQLite unless it may wait on something slow."""
        if self.inline and not blocking:
            return fn(*args)
        return await self._in_thread(fn, *args)

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
                tune_garbage_collector()
                self.live.attach(asyncio.get_running_loop())
                if self.inline:
                    self.c.store.group_commits(asyncio.get_running_loop())
                if self.fanout is not None:
                    threading.Thread(
                        target=self.fanout.listen_forever,
                        args=(asyncio.get_running_loop(),),
                        daemon=True,
                        name="cogsync-live-listener",
                    ).start()
                self._flusher = asyncio.create_task(self._flush_forever())
                if self.inline:
                    self._checkpointing = asyncio.create_task(self._checkpoint_forever())
                self._dispatching = asyncio.create_task(self.dispatcher.run())
                self._publishing = asyncio.create_task(self.bulk_publisher.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in (
                    self._flusher,
                    self._checkpointing,
                    self._dispatching,
                    self._publishing,
                ):
                    if task is not None:
                        task.cancel()
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _shutdown(self) -> None:
        """Every step runs, whatever the one before raised (a full disk fails the last
        flush; the store must still be closed)."""
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("stop the live fan-out", self._stop_fanout),
            ("stop the dispatcher", self.dispatcher.stop),
            ("close the streams backend", self.dispatcher.streams.close),
            ("flush the sync session counts",
             lambda: self._in_thread(self.c.service.sessions.flush, self.c.store)),
        ]
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("shutdown: could not %s", what)
        self.executor.shutdown(wait=True)
        try:
            self.c.store.close()
        except Exception:
            log.exception("shutdown: could not close the store")

    async def _stop_fanout(self) -> None:
        if self.fanout is not None:
            self.fanout.stop()

    async def _flush_forever(self) -> None:
        """Each second, off the event loop: session counts to the database."""
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self._in_thread(self.c.service.sessions.flush, self.c.store)
            except Exception:
                log.exception("could not flush sync session counts; will retry")

    async def _checkpoint_forever(self) -> None:
        """SQLite, off the event loop: the write-ahead log into the database file, in
        small steps while writes come in. One large copy a second (tens of MB under full
        load, with its fsyncs) stalled requests for tens of milliseconds; a copy every
        50 ms is small. (Under steady writes the log still only starts over through the
        last step of Store.checkpoint, once it is past its threshold.)"""
        frames = 0
        while True:
            before = frames
            try:
                frames = await self._in_thread(self.c.store.checkpoint)
            except Exception:
                log.exception("could not checkpoint the write-ahead log; will retry")
            busy = frames != before
            await asyncio.sleep(CHECKPOINT_BUSY_SECONDS if busy else CHECKPOINT_IDLE_SECONDS)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS" and await self.cors.answer_preflight(scope, send):
            return  # a CORS preflight, answered for every route alike
        send = self.cors.sending(scope, send)  # CORS headers on every answer, streams too
        request_id = str(uuid.uuid4())
        try:
            request = await self._read_request(scope, receive)
            if request.raw_path in (HEALTH_PATH, READY_PATH):
                response = await self._health(request)
            elif request.raw_path in JWKS_PATHS and request.method == "GET":
                response = render_result(self.c.signer.jwks)
            elif request.raw_path == LIVE_PATH and request.method == "GET":
                pool_id, identity_id = await self._live_subject(request)
                await self._stream_live(pool_id, identity_id, receive, send, request_id)
                return
            elif is_query_request(request):
                response = await self.sts.handle(request, request_id)
            elif self.console is not None and self.console.serves(request.raw_path):
                response = await self.console.handle(request)
            elif request.raw_path.startswith(CONTROLS_PATH):
                if self.controls is None:
                    raise controls_off()
                response = await self.controls.handle(request)
            elif request.headers.get("x-amz-target", "").startswith(IDENTITY_TARGET_PREFIX):
                response = await self._dispatch_identity(request)
            else:
                response = await self._dispatch(request)
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
                log.exception("unexpected error in request %s", request_id)
                response = render_error(InternalError("An internal error occurred"), self.model)
        if self.console is not None:
            self.console.rates.count(scope, response.status)
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        headers.extend((k.encode(), v.encode()) for k, v in response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

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

    async def _live_subject(self, request: HttpRequest) -> tuple[str, str]:
        """Who the live channel is for; the caller must be that identity or its developer."""
        caller = await self._authenticate(request, SYNC_SERVICE)
        shape = self.model.operations["DescribeIdentityUsage"].input
        wanted = {name: request.query_value(name) for name in ("IdentityPoolId", "IdentityId")}
        params = validate(shape, wanted)
        pool_id, identity_id = params["IdentityPoolId"], params["IdentityId"]
        if caller.is_developer:
            await self._in_thread(self.c.service.get_configuration, caller, pool_id)
        elif (caller.identity_pool_id, caller.identity_id) != (pool_id, identity_id):
            raise NotAuthorized("Access to the requested identity is denied for these credentials")
        return pool_id, identity_id

    async def _stream_live(
        self, pool_id: str, identity_id: str, receive: Receive, send: Send, request_id: str
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
        disconnected = asyncio.ensure_future(self._wait_disconnect(receive))
        with self.live.subscribe(pool_id, identity_id) as queue:
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, disconnected},
                        timeout=LIVE_HEARTBEAT_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if disconnected in done:
                        getter.cancel()
                        return
                    if getter not in done:
                        getter.cancel()
                        chunk = b": keep-alive\n\n"
                    else:
                        chunk = getter.result()
                        if chunk == LIVE_CLOSE:
                            break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                disconnected.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _read_request(self, scope: Scope, receive: Receive) -> HttpRequest:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
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
        raw_path = raw_path.split("?", 1)[0]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        return HttpRequest(scope["method"], raw_path, query, headers, b"".join(chunks))

    # --- protocol -> auth -> service ----------------------------------------------

    async def _dispatch_identity(self, request: HttpRequest) -> HttpResponse:
        """Cognito Identity (JSON 1.1); its errors carry its own model's statuses."""
        try:
            route = self.identity_router.match(request)
            operation = route.operation
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

    async def _dispatch(self, request: HttpRequest) -> HttpResponse:
        route = self.router.match(request)
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

    async def _authenticate(self, request: HttpRequest, service: str) -> Caller:
        if self.settings.open_mode:
            return await self._open_mode_caller(request)
        claim = parse_signed_request(request)
        if claim.security_token is not None:
            # Temporary identity credentials: everything needed is in the token.
            identity, secret = self.c.credentials.open(claim.access_key_id, claim.security_token)
            verify(request, claim, secret, region=self.settings.region, service=service)
            return identity.caller()
        hit, key = self.c.keyring.cached(claim.access_key_id)
        if not hit:
            key = await self._store_work(self.c.keyring.lookup, claim.access_key_id)
        if key is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        verify(request, claim, key.secret_access_key, region=self.settings.region, service=service)
        if not key.used:
            await self._store_work(self.c.keyring.mark_used, key)
        return Caller(account_id=key.account_id)

    async def _open_mode_caller(self, request: HttpRequest) -> Caller:
        """Open mode: signatures are not verified, but credentials still name the caller:
        identity credentials act as their identity, a known developer key as its
        account; unsigned requests and unknown keys (``testing``, say) act as a developer
        of the first account."""
        signed = "authorization" in request.headers or any(
            name == "X-Amz-Credential" for name, _ in request.query
        )
        if signed:
            claim = parse_signed_request(request)
            if claim.security_token is not None:
                identity, _ = self.c.credentials.open(claim.access_key_id, claim.security_token)
                return identity.caller()
            hit, key = self.c.keyring.cached(claim.access_key_id)
            if not hit:
                key = await self._store_work(self.c.keyring.lookup, claim.access_key_id)
            if key is not None:
                return Caller(account_id=key.account_id)
        if self._open_caller is None:
            account = await self._in_thread(default_account, self.c.store)
            if account is None:
                raise InternalError("open mode needs an account; none exists yet")
            self._open_caller = Caller(account_id=account)
        return self._open_caller


def tune_garbage_collector() -> None:
    """What start-up built lives as long as the process: freeze it, so that collections
    no longer walk it; and collect the young generation every 20,000 allocations rather
    than 700 (a request allocates hundreds of short-lived objects, nearly none in cycles)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def create_app(settings: Settings) -> CogsyncApp:
    return CogsyncApp(build_components(settings))


def app_from_environment() -> CogsyncApp:
    """The app of one worker process of ``cogsync serve --workers N``."""
    settings = settings_from_json(os.environ[SETTINGS_VARIABLE])
    return CogsyncApp(build_components(settings, run_migrations=False))
