"""The instruction-count benchmark drives the real app with valid signed requests (the
counting itself needs valgrind and takes minutes: run it by hand, see docs/performance.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.instructions import SCENARIOS, InProcess, _requests, asgi_request
from tests.server import independent_of_backend

pytestmark = independent_of_backend


def test_raw_requests_become_asgi_scopes() -> None:
    scope, body = asgi_request(b"POST /a/b%3Ac?x=1&y=2 HTTP/1.1\r\nHost: h:1\r\n"
                               b"X-Amz-Date: 20240101T000000Z\r\n\r\n{}")
    assert (scope["method"], scope["path"], scope["raw_path"], scope["query_string"]) == (
        "POST", "/a/b%3Ac", b"/a/b%3Ac", b"x=1&y=2")
    assert scope["headers"] == [(b"host", b"h:1"), (b"x-amz-date", b"20240101T000000Z")]
    assert body == b"{}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_counted_request_is_a_valid_call(tmp_path: Path, scenario: str) -> None:
    async def main() -> list[int]:
        node = InProcess(tmp_path, None)
        node.start()
        statuses = [(await node.call(raw))[0] for raw in await _requests(node, scenario, 45)]
        node.stop()
        return statuses

    assert asyncio.run(main()) == [200] * 45
