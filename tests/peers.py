"""Real peers for the integration tests: a server speaking AWS APIs, and small receivers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AwsApiServer:
    """moto's standalone server: Kinesis and SNS APIs on a local port, in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


@dataclass
class HttpReceiver:
    """Records every POST it gets; ``respond`` picks the status (and may sleep)."""

    respond: Callable[[dict[str, Any]], int] = lambda body: 200
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-raw-body"] = raw.decode()
                status = receiver.respond(body)
                if status < 300:
                    receiver.received.append((headers, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"
        return self

    def stop(self) -> None:
        self._httpd.shutdown()


class SnsApiServer:
    """Just enough of the SNS API (Query protocol) to receive push sync: it answers
    CreatePlatformEndpoint and Publish as SNS does, records what it was asked, and
    refuses the tokens in ``rejected`` as disabled endpoints."""

    def __init__(self) -> None:
        from urllib.parse import parse_qs

        self.endpoints: dict[str, tuple[str, str]] = {}  # arn -> (application, token)
        self.published: list[tuple[str, dict[str, Any]]] = []  # (token, message structure)
        self.rejected: set[str] = set()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                raw = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if "/sns/aws4_request" not in self.headers.get("authorization", ""):
                    return self._reply(403, _sns_error("InvalidClientTokenId", "unsigned"))
                action = form.get("Action")
                if action == "CreatePlatformEndpoint":
                    arn = f"{form['PlatformApplicationArn']}/{len(peer.endpoints) + 1}"
                    peer.endpoints[arn] = (form["PlatformApplicationArn"], form["Token"])
                    return self._reply(200, _sns_ok(
                        action, f"<EndpointArn>{arn}</EndpointArn>"))
                if action == "Publish":
                    _, token = peer.endpoints.get(form.get("TargetArn", ""), ("", ""))
                    if not token or token in peer.rejected:
                        return self._reply(400, _sns_error("EndpointDisabled",
                                                           "Endpoint is disabled"))
                    assert form.get("MessageStructure") == "json"
                    peer.published.append((token, json.loads(form["Message"])))
                    return self._reply(200, _sns_ok(action, "<MessageId>m-1</MessageId>"))
                return self._reply(400, _sns_error("InvalidAction", str(action)))

            def _reply(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", "text/xml")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def messages_for(self, token: str) -> list[dict[str, Any]]:
        return [message for t, message in self.published if t == token]

    def stop(self) -> None:
        self._httpd.shutdown()


_SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"


def _sns_ok(action: str, result: str) -> str:
    return (f'<{action}Response xmlns="{_SNS_NS}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>")


def _sns_error(code: str, message: str) -> str:
    return (f'<ErrorResponse xmlns="{_SNS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>")
