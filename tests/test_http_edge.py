"""The HTTP edge: limits and timeouts like a production front end, and everything a
client relies on (keep-alive, pipelining, chunked bodies, 100-continue, HEAD, half-close,
graceful stop). Raw sockets, because the point is what well-behaved clients never send.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServerProcess, new_identity_id
from tests.test_wire_errors import Reply, SignedHttp, dataset_path, exchange

HEALTH = b"GET /_cogsync/health HTTP/1.1\r\nHost: x\r\n\r\n"


def _host_port(server: ServerProcess) -> tuple[str, int]:
    host, port = server.endpoint.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _connect(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(_host_port(server), timeout=timeout)


def _read_reply(sock: socket.socket, buffer: bytearray | None = None,
                head_only: bool = False) -> Reply:
    """Reads exactly one response (Content-Length framed) from a socket."""
    data = buffer if buffer is not None else bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {bytes(data)!r}")
        data += chunk
    end = data.index(b"\r\n\r\n")
    lines = bytes(data[:end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    del data[: end + 4]
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    body = bytes(data[:length])
    del data[:length]
    return Reply(int(lines[0].split(" ")[1]), headers, body)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def _latencies(server: ServerProcess, count: int) -> list[float]:
    host, port = _host_port(server)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/_cogsync/health")
        assert conn.getresponse().read() == b'{"status":"ok"}'
        conn.close()
        times.append(time.perf_counter() - started)
    return times


def _rss_kib(server: ServerProcess) -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _assert_edge_error(reply: Reply, status: int) -> None:
    assert reply.status == status, reply
    body = json.loads(reply.body)
    assert reply.headers["x-amzn-errortype"] == body["__type"] and body["message"]
    assert reply.headers["connection"] == "close"


@contextlib.contextmanager
def _in_background(target: Any) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)


# --- limits ----------------------------------------------------------------------------

@pytest.mark.parametrize(("head", "status"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Space : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417),
], ids=lambda v: v if isinstance(v, int) else v[:30].decode("latin-1"))
def test_heads_over_the_limits_or_malformed_are_refused(server: ServerProcess, head: bytes,
                                                        status: int) -> None:
    host, port = _host_port(server)
    _assert_edge_error(exchange(host, port, head), status)


def test_heads_right_at_the_limits_are_served(server: ServerProcess) -> None:
    host, port = _host_port(server)
    base = b"GET /_cogsync/health HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n"
    padded = base[:-2] + b"a" * (16 * 1024 - len(base)) + b"\r\n\r\n"
    assert exchange(host, port, padded).status == 200
    many = b"GET /_cogsync/health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 99 + b"\r\n"
    assert exchange(host, port, many).status == 200


def test_huge_header_costs_other_clients_nothing(make_server: Any) -> None:
    """A client offering hundreds of MB of header is cut off after the limit; other
    clients' latency stays near the baseline, and no memory stays held."""
    srv = make_server()
    _latencies(srv, 5)  # warm up
    baseline = _latencies(srv, 20)
    rss_before = _rss_kib(srv)
    answers: list[bytes] = []
    offered: list[int] = []

    def attack(stop: threading.Event) -> None:
        piece = b"a" * 65536
        while not stop.is_set():
            sock = _connect(srv)
            sent = 0
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                while sent < 300 * 1024 * 1024 and not stop.is_set():
                    sock.sendall(piece)
                    sent += len(piece)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                answers.append(sock.recv(200))
            offered.append(sent)
            sock.close()

    with _in_background(attack):
        time.sleep(0.3)
        during = _latencies(srv, 20)
    assert answers and all(a.startswith(b"HTTP/1.1 431 ") for a in answers), answers[:3]
    assert max(offered) < 8 * 1024 * 1024, "the server read far past the limit"
    limit = max(10 * statistics.median(baseline), 0.25)
    assert statistics.median(during) < limit, (baseline, during)
    assert _rss_kib(srv) - rss_before < 30 * 1024


def test_slow_loris_is_timed_out_and_costs_others_nothing(make_server: Any) -> None:
    srv = make_server("--header-timeout", "2")
    baseline = _latencies(srv, 20)
    slow = [_connect(srv) for _ in range(40)]
    started = time.monotonic()

    def trickle(stop: threading.Event) -> None:
        head = b"GET /_cogsync/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        for n in range(len(head)):
            if stop.is_set():
                return
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(head[n:n + 1] if n < len(head) else b"a")
            time.sleep(0.2)

    with _in_background(trickle):
        during = _latencies(srv, 20)
        assert statistics.median(during) < max(10 * statistics.median(baseline), 0.25)
        for sock in slow:
            reply = _read_reply(sock)
            _assert_edge_error(reply, 408)
            assert _closed_by_server(sock, 5)
    assert time.monotonic() - started < 2 + 4
    for sock in slow:
        sock.close()


def test_body_that_never_completes_is_timed_out(make_server: Any) -> None:
    srv = make_server("--body-timeout", "1")
    sock = _connect(srv)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    started = time.monotonic()
    _assert_edge_error(_read_reply(sock), 408)
    assert time.monotonic() - started < 4
    sock.close()


def test_idle_connection_is_closed_after_the_keep_alive_timeout(make_server: Any) -> None:
    srv = make_server("--keep-alive-timeout", "1")
    sock = _connect(srv)
    sock.sendall(HEALTH)
    assert _read_reply(sock).status == 200
    assert _closed_by_server(sock, 4)
    sock.close()


def test_keep_alive_outlasts_the_old_five_seconds(server: ServerProcess) -> None:
    """Load balancers keep idle connections 60 s and more: a server that closes them
    after 5 s races the next request on them."""
    sock = _connect(server)
    sock.sendall(HEALTH)
    assert _read_reply(sock).status == 200
    time.sleep(6)
    sock.sendall(HEALTH)
    reply = _read_reply(sock)
    assert reply.status == 200 and reply.headers.get("connection") != "close"
    sock.close()


# --- what clients rely on --------------------------------------------------------------

def test_pipelined_requests_are_answered_in_order(server: ServerProcess,
                                                  pool_id: str) -> None:
    sock = _connect(server)
    missing = f"GET /identitypools/{pool_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    sock.sendall(HEALTH + missing + HEALTH + b"HEAD /_cogsync/health HTTP/1.1\r\nHost: x\r\n\r\n"
                 + HEALTH)
    buffer = bytearray()
    statuses = [_read_reply(sock, buffer).status for _ in range(3)]
    head = _read_reply(sock, buffer, head_only=True)
    assert head.status == 200 and head.headers["content-length"] == "15"
    assert _read_reply(sock, buffer).body == b'{"status":"ok"}'  # HEAD sent no body
    assert statuses == [200, 403, 200]
    sock.close()


def test_chunked_body_and_100_continue(server: ServerProcess, sync: Any,
                                       pool_id: str) -> None:
    raw = SignedHttp(server)
    where = {"IdentityPoolId": pool_id, "IdentityId": new_identity_id(), "DatasetName": "d"}
    token = sync.list_records(**where)["SyncSessionToken"]
    body = json.dumps({"SyncSessionToken": token, "RecordPatches": [
        {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}]}).encode()
    prepared = raw.sign("POST", dataset_path(pool_id, where["IdentityId"], "d"), body=body,
                        headers={"Expect": "100-continue"})
    head = [f"POST {prepared.target} HTTP/1.1", f"Host: {raw.host}:{raw.port}",
            *(f"{k}: {v}" for k, v in prepared.headers.items()), "Transfer-Encoding: chunked"]
    sock = _connect(server)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x;ext=1\r\n%s\r\n" % (
        len(body) - 10, body[10:]) + b"0\r\nX-Trailer: t\r\n\r\n")
    reply = _read_reply(sock)
    assert reply.status == 200, reply.body
    assert [r["SyncCount"] for r in reply.json()["Records"]] == [1]
    sock.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_half_closed_client_gets_its_answer(server: ServerProcess, sync: Any, pool_id: str,
                                            method: str) -> None:
    """Runs on both backends (on PostgreSQL the request runs on a thread)."""
    raw = SignedHttp(server)
    where = {"IdentityPoolId": pool_id, "IdentityId": new_identity_id(), "DatasetName": "d"}
    path = dataset_path(pool_id, where["IdentityId"], "d")
    body = b""
    if method == "POST":
        token = sync.list_records(**where)["SyncSessionToken"]
        body = json.dumps({"SyncSessionToken": token, "RecordPatches": [
            {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}]}).encode()
    else:
        path += "/records"
    prepared = raw.sign(method, path, body=body)
    head = [f"{method} {prepared.target} HTTP/1.1", f"Host: {raw.host}:{raw.port}",
            *(f"{k}: {v}" for k, v in prepared.headers.items()),
            f"Content-Length: {len(body)}"]
    sock = _connect(server)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    sock.shutdown(socket.SHUT_WR)
    reply = _read_reply(sock)
    assert reply.status == 200, reply.body
    assert _closed_by_server(sock, 5)
    sock.close()
    if method == "POST":
        assert sync.list_records(**where)["DatasetSyncCount"] == 1


def test_sigterm_finishes_the_request_in_flight(make_server: Any) -> None:
    srv = make_server()
    raw = SignedHttp(srv)
    identity = new_identity_id()
    path = dataset_path(srv.pool_id, identity, "d") + "/records"
    prepared = raw.sign("GET", path)
    head = [f"GET {prepared.target} HTTP/1.1", f"Host: {raw.host}:{raw.port}",
            *(f"{k}: {v}" for k, v in prepared.headers.items())]
    idle = _connect(srv)
    busy = _connect(srv)
    busy.sendall(("\r\n".join(head) + "\r\n").encode())  # all but the last empty line
    time.sleep(0.3)
    assert srv.process is not None
    srv.process.send_signal(signal.SIGTERM)
    assert _closed_by_server(idle, 5)  # idle connections close at once
    time.sleep(0.3)
    busy.sendall(b"\r\n")
    reply = _read_reply(busy)
    assert reply.status == 200 and reply.headers["connection"] == "close"
    assert srv.process.wait(15) == 0
    with pytest.raises(OSError):
        _connect(srv, timeout=2)
