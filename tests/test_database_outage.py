"""A lost PostgreSQL connection: quick 5xx answers the SDKs retry, never a hang; then
recovery without a restart. The database is reached through a TCP proxy the test cuts."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import POSTGRES_URL, ServerProcess, new_identity_id, postgres_database_for
from tests.test_sync_semantics import Dataset, put


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until cut; cutting drops every link."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.links: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.links += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up.clear()
        for link in self.links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
        self.links.clear()

    def restore(self) -> None:
        self.up.set()


def test_lost_database_connection(tmp_path: Path) -> None:
    from urllib.parse import urlparse

    pg = urlparse(POSTGRES_URL)
    proxy = CuttableProxy((pg.hostname or "127.0.0.1", pg.port or 5432))
    direct = postgres_database_for(tmp_path / "outage")
    through_proxy = direct.replace(f"{pg.hostname}:{pg.port}", f"127.0.0.1:{proxy.port}")
    server = ServerProcess(tmp_path / "outage", database=through_proxy).start()
    try:
        client = server.client()
        ds = Dataset(client, server.pool_id, new_identity_id())
        ds.update([put("before", "1")])
        proxy.cut()
        started = time.monotonic()
        codes = []
        for _ in range(3):
            with pytest.raises(ClientError) as excinfo:
                ds.update([put("during", "2")])
            codes.append((excinfo.value.response["Error"]["Code"],
                          excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]))
        assert time.monotonic() - started < 30  # answered, not hung
        assert all(status >= 500 for _, status in codes), codes
        assert ("InternalErrorException", 500) in codes
        proxy.restore()
        recovered = _eventually(lambda: ds.values())
        assert recovered == {"before": "1"}
        ds.update([put("after", "3")])
        assert ds.values() == {"before": "1", "after": "3"}
    finally:
        server.kill()


def _eventually(call: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
