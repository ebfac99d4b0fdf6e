"""``GET /_cogsync/live``: the Server-Sent Events stream of the live channel (the broker
and the protocol are in ``cogsync.integrations.live``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.integrations.live import CLOSE, LiveBroker
from cogsync.metrics import LIVE_CONNECTIONS

HEARTBEAT_SECONDS = 15.0
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def stream_events(broker: LiveBroker, pool_id: str, identity_id: str, receive: Receive,
                        send: Send, request_id: str) -> None:
    """The stream of one live-channel request, until the client leaves (or falls behind),
    or the server stops; counted in ``cogsync_live_connections`` while it runs."""
    LIVE_CONNECTIONS.inc()
    try:
        await _stream(broker, pool_id, identity_id, receive, send, request_id)
    finally:
        LIVE_CONNECTIONS.dec()


async def _stream(broker: LiveBroker, pool_id: str, identity_id: str, receive: Receive,
                  send: Send, request_id: str) -> None:
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
    with broker.subscribe(pool_id, identity_id) as queue:
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected},
                    timeout=HEARTBEAT_SECONDS,
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
