"""CORS on the wire: preflights and response headers on every route, origins allowed or
not, the default (any origin; pages on this machine only in open mode), and the setting
(``--cors-origins`` / ``COGSYNC_CORS_ORIGINS``). What browsers make of it is proved in
``tests/test_browser.py``."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import botocore.session
import pytest
from botocore.exceptions import ClientError

from cogsync.config import Settings, settings_from_json, settings_to_json
from cogsync.config import cors_origins as parse_origins
from cogsync.http_cors import ALLOWED_METHODS, CorsPolicy
from tests.identity_helpers import make_pool, unauthenticated_credentials
from tests.server import ServerProcess, independent_of_backend, new_identity_id
from tests.test_push import presigned_live_url

PAGE = "http://127.0.0.1:3000"
SDK_HEADERS = {
    "authorization", "content-type", "x-amz-date", "x-amz-security-token", "x-amz-target",
    "x-amz-user-agent", "x-amz-content-sha256", "amz-sdk-invocation-id", "amz-sdk-request",
}
EXPOSED = "x-amzn-RequestId, x-amzn-ErrorType, x-amzn-ErrorMessage, Date"
CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers",
                "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-allow-credentials")


class Answer:
    def __init__(self, response: http.client.HTTPResponse, read_body: bool = True) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read() if read_body else b""

    def cors(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k in CORS_HEADERS}


def ask(endpoint: str, method: str, path: str, headers: dict[str, str] | None = None,
        body: bytes | None = None, read_body: bool = True) -> Answer:
    url = urlparse(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    return Answer(connection.getresponse(), read_body)


def preflight(endpoint: str, path: str, method: str = "POST", origin: str = PAGE,
              requested: str = "authorization,content-type,x-amz-date") -> Answer:
    return ask(endpoint, "OPTIONS", path, {
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": requested,
    })


def dataset_path(pool: str, identity: str, name: str = "d") -> str:
    return f"/identitypools/{pool}/identities/{identity}/datasets/{name}"


def routes(pool: str) -> list[tuple[str, str, str]]:
    """(method, path, requested headers) of a preflight to each kind of route."""
    identity = new_identity_id()
    return [
        ("DELETE", dataset_path(pool, identity), "authorization,x-amz-date"),
        ("GET", f"/identitypools/{pool}/identities/{identity}/datasets",
         "authorization,x-amz-date,x-amz-security-token"),
        ("POST", "/", "content-type,x-amz-target,x-amz-user-agent,x-amz-content-sha256"),
        ("POST", f"/identitypools/{pool}/identities/{identity}/datasets/d",
         "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type"),
        ("GET", f"/_cogsync/live?IdentityPoolId={pool}&IdentityId={identity}", ""),
        ("GET", "/.well-known/jwks.json", ""),
        ("GET", "/.well-known/jwks_uri", ""),
        ("GET", "/_cogsync/health", ""),
        ("GET", "/a/route/added/later", "x-amz-date"),
    ]


def test_preflights_of_every_route_are_answered(server: ServerProcess, pool_id: str) -> None:
    for method, path, requested in routes(pool_id):
        answer = preflight(server.endpoint, path, method, requested=requested)
        assert answer.status == 200, (path, answer.status, answer.body)
        assert answer.body == b""
        assert answer.headers["access-control-allow-origin"] == "*"
        assert set(answer.headers["access-control-allow-methods"].split(", ")) == {
            "GET", "POST", "DELETE"}
        allowed = set(answer.headers["access-control-allow-headers"].split(", "))
        assert allowed >= SDK_HEADERS, path
        assert answer.headers["access-control-max-age"] == "172800"
        assert "access-control-allow-credentials" not in answer.headers


def test_preflights_allow_other_wellformed_headers_the_browser_asks_for(
        server: ServerProcess) -> None:
    answer = preflight(server.endpoint, "/", requested="X-Amz-Checksum-Crc32, x-custom, bad:name")
    allowed = answer.headers["access-control-allow-headers"].split(", ")
    assert "x-amz-checksum-crc32" in allowed and "x-custom" in allowed
    assert not any(":" in name for name in allowed)
    assert "Access-Control-Request-Headers" in answer.headers["vary"]


def test_an_options_request_that_is_no_preflight_is_unchanged(server: ServerProcess) -> None:
    answer = ask(server.endpoint, "OPTIONS", "/", {"Origin": PAGE})
    assert answer.status == 404
    assert answer.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert answer.headers["access-control-allow-origin"] == "*"


def _headers_of(call: Any) -> dict[str, str]:
    try:
        response = call()
    except ClientError as error:
        response = error.response
    return dict(response["ResponseMetadata"]["HTTPHeaders"])


def test_every_answer_carries_the_cors_headers(server: ServerProcess, pool_id: str) -> None:
    sync = server.client()
    identity = server.client("cognito-identity")
    identity_id = new_identity_id()
    answers = {
        "sync ok": _headers_of(lambda: sync.list_datasets(
            IdentityPoolId=pool_id, IdentityId=identity_id)),
        "sync error": _headers_of(lambda: sync.describe_dataset(
            IdentityPoolId=pool_id, IdentityId=identity_id, DatasetName="none")),
        "identity ok": _headers_of(lambda: identity.list_identity_pools(MaxResults=5)),
        "identity error": _headers_of(lambda: identity.describe_identity_pool(
            IdentityPoolId="us-east-1:00000000-0000-0000-0000-000000000000")),
    }
    for path in ("/_cogsync/health", "/.well-known/jwks.json", "/no/such/route"):
        answers[path] = ask(server.endpoint, "GET", path).headers
    answers["unsigned"] = ask(server.endpoint, "GET", dataset_path(pool_id, identity_id)).headers
    answers["body too large"] = ask(
        server.endpoint, "POST", dataset_path(pool_id, identity_id),
        {"Content-Length": str(5 * 1024 * 1024)}, body=b"").headers
    for name, headers in answers.items():
        assert headers.get("access-control-allow-origin") == "*", name
        assert headers.get("access-control-expose-headers") == EXPOSED, name
        assert "access-control-allow-credentials" not in headers, name


def test_the_live_channel_stream_carries_the_cors_headers(server: ServerProcess) -> None:
    pool = make_pool(server, push=False)
    identity_id, creds = unauthenticated_credentials(server, pool)
    url = urlparse(presigned_live_url(server, pool, identity_id, creds))
    stream = ask(server.endpoint, "GET", f"{url.path}?{url.query}", {"Origin": PAGE},
                 read_body=False)
    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["access-control-allow-origin"] == "*"
    assert stream.headers["access-control-expose-headers"] == EXPOSED


def test_a_list_of_origins(make_server: Any) -> None:
    srv = make_server("--cors-origins", f"https://app.example.com, {PAGE}/")
    path = dataset_path(srv.pool_id, new_identity_id())
    allowed = preflight(srv.endpoint, path, "DELETE")
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert "Origin" in allowed.headers["vary"]

    refused = preflight(srv.endpoint, path, "DELETE", origin="http://127.0.0.1:3001")
    assert refused.status == 403
    assert refused.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert json.loads(refused.body)["__type"] == "AccessDeniedException"
    assert refused.cors() == {}

    for origin, expected in ((PAGE, PAGE), ("https://app.example.com", "https://app.example.com"),
                             ("https://evil.example", None), (None, None)):
        headers = {"Origin": origin} if origin else {}
        answer = ask(srv.endpoint, "GET", path, headers)
        # Served as always: an unsigned call is refused by cogsync, with or without CORS.
        assert answer.status == 403
        assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        assert answer.headers.get("access-control-allow-origin") == expected, origin
        assert ("access-control-expose-headers" in answer.headers) == (expected is not None)
        assert answer.headers["vary"] == "Origin"


def test_open_mode_lets_in_only_pages_on_this_machine_by_default(make_server: Any) -> None:
    srv = make_server("--open")
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8000"):
        answer = preflight(srv.endpoint, "/", origin=origin)
        assert answer.status == 200, origin
        assert answer.headers["access-control-allow-origin"] == origin
    refused = preflight(srv.endpoint, "/", origin="https://evil.example")
    assert refused.status == 403 and refused.cors() == {}
    stranger = ask(srv.endpoint, "GET", "/_cogsync/health", {"Origin": "http://localhost.evil"})
    assert stranger.status == 200 and stranger.cors() == {}



def test_none_turns_cors_off(make_server: Any) -> None:
    srv = make_server(env={"COGSYNC_CORS_ORIGINS": "none"})
    assert preflight(srv.endpoint, "/", origin=PAGE).status == 403
    answer = ask(srv.endpoint, "GET", "/_cogsync/health", {"Origin": PAGE})
    assert answer.status == 200 and answer.cors() == {}


@independent_of_backend
def test_the_setting_reaches_worker_processes_and_open_mode_may_widen_it() -> None:
    for origins in (("*",), ("none",), (PAGE, "https://app.example.com"), None):
        settings = Settings(cors_origins=origins, open_mode=True)
        assert settings_from_json(settings_to_json(settings)).cors_origins == origins
    widened = CorsPolicy(settings_from_json(settings_to_json(
        Settings(cors_origins=("*",), open_mode=True))).cors_origins, open_mode=True)
    assert widened.allows("https://evil.example")


@independent_of_backend
def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    for args, env in ((["--cors-origins", "https://app.example.com/path"], {}),
                      ([], {"COGSYNC_CORS_ORIGINS": "app.example.com"})):
        result = subprocess.run(
            [sys.executable, "-m", "cogsync", "serve", "--port", "0",
             "--data-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=60, env={**os.environ, **env},
        )
        assert result.returncode == 2, result.stderr
        named = ("cogsync: --cors-origins ", "cogsync: COGSYNC_CORS_ORIGINS ")
        assert result.stderr.startswith(named), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@independent_of_backend
def test_parse_origins() -> None:
    assert parse_origins(" * ") == ("*",)
    assert parse_origins("none") == ("none",)
    assert parse_origins("HTTPS://App.Example.com/, http://localhost:3000,http://[::1]:8080") == (
        "https://app.example.com", "http://localhost:3000", "http://[::1]:8080")
    for bad in ("ftp://files.example", "https://app.example.com/path", "app.example.com", ",",
                "https://a.example,*", "none,https://a.example", "https://a.example:port"):
        with pytest.raises(ValueError):
            parse_origins(bad)


@independent_of_backend
def test_the_allowed_methods_are_every_method_the_models_use() -> None:
    loader = botocore.session.get_session().get_component("data_loader")
    used = {"GET"}  # the live channel, JWKS, health
    for service in ("cognito-sync", "cognito-identity"):
        model = loader.load_service_model(service, "service-2")
        used |= {op["http"]["method"] for op in model["operations"].values()}
    assert used == set(ALLOWED_METHODS)
