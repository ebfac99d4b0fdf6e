"""The HTTP side of the live channel: ``GET /_cogsync/live``, a Server-Sent Events stream
of an identity's committed changes (see :mod:`cogsync.integrations.live`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.errors import NotAuthorized
from cogsync.integrations.live import CLOSE, LiveBroker
from cogsync.metrics import LIVE_CONNECTIONS
from cogsync.protocol.model import SYNC_SERVICE, ServiceModel
from cogsync.protocol.routing import HttpRequest
from cogsync.protocol.validation import validate
from cogsync.sync.service import SyncService

LIVE_PATH = "/_cogsync/live"
LIVE_HEARTBEAT_SECONDS = 15.0

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Authenticate = Callable[[HttpRequest, str], Awaitable[Caller]]
Run = Callable[..., Awaitable[Any]]


class LiveChannel:
    def __init__(self, broker: LiveBroker, model: ServiceModel, service: SyncService,
                 authenticate: Authenticate, in_thread: Run):
        self.broker = broker
        self.model = model
        self.service = service
        self.authenticate = authenticate
        self.in_thread = in_thread

    async def serve(self, request: HttpRequest, receive: Receive, send: Send,
                    request_id: str) -> None:
        """Authorizes the request (raising the AWS error), then streams until the client
        leaves or its queue overflows."""
        pool_id, identity_id = await self._subject(request)
        LIVE_CONNECTIONS.inc()  # cogsync_live_connections: streams open now
        try:
            await self._stream(pool_id, identity_id, receive, send, request_id)
        finally:
            LIVE_CONNECTIONS.dec()

    async def _subject(self, request: HttpRequest) -> tuple[str, str]:
        """Who the live channel is for; the caller must be that identity or its developer."""
        caller = await self.authenticate(request, SYNC_SERVICE)
        shape = self.model.operations["DescribeIdentityUsage"].input
        wanted = {name: request.query_value(name) for name in ("IdentityPoolId", "IdentityId")}
        params = validate(shape, wanted)
        pool_id, identity_id = params["IdentityPoolId"], params["IdentityId"]
        if caller.is_developer:
            await self.in_thread(self.service.get_configuration, caller, pool_id)
        elif (caller.identity_pool_id, caller.identity_id) != (pool_id, identity_id):
            raise NotAuthorized("Access to the requested identity is denied for these credentials")
        return pool_id, identity_id

    async def _stream(
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
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        with self.broker.subscribe(pool_id, identity_id) as queue:
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
                        if chunk == CLOSE:
                            break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                disconnected.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
