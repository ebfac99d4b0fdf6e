"""The web console over HTTP (the browser test drives it in Chromium): off by default,
the operator sign-in, its cookies, CSRF refusals, what each operator may see, and
edits that reach a boto3 client's next sync."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import pytest

from tests.server import ServerProcess, independent_of_backend, new_identity_id
from tests.test_sync_semantics import Dataset, put

ADMIN_TOKEN = "console-admin-token-0123456789abcdefghij"
BASE = "/_cogsync/console"


class Browser:
    """Just enough of a browser: a cookie jar, no redirects followed."""

    def __init__(self, endpoint: str):
        parsed = urlparse(endpoint)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["content-type"] = "application/x-www-form-urlencoded"
        conn.request(method, BASE + path, body=body, headers=sent)
        response = conn.getresponse()
        text = response.read().decode()
        got: dict[str, Any] = {k.lower(): v for k, v in response.getheaders()}
        got["set-cookie"] = response.headers.get_all("set-cookie") or []
        for line in got["set-cookie"]:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        conn.close()
        return response.status, got, text

    def sign_in(self, key_id: str, secret: str) -> tuple[int, dict[str, Any], str]:
        status, _, page = self.request("GET", "/login")
        assert status == 200
        nonce = re.search(r'name="csrf" value="([^"]+)"', page)
        assert nonce
        return self.request("POST", "/login", {"csrf": nonce[1], "access_key_id": key_id,
                                                "secret": secret})

    def csrf(self) -> str:
        status, _, page = self.request("GET", "/pools")
        assert status == 200, page
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found
        return found[1]


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("console"), ["--console"],
                         {"COGSYNC_CONSOLE_TOKEN": ADMIN_TOKEN}).start()
    yield proc
    proc.kill()


@pytest.fixture
def operator(console_server: ServerProcess) -> Browser:
    browser = Browser(console_server.endpoint)
    creds = console_server.credentials
    assert creds is not None
    status, _, _ = browser.sign_in(creds.access_key_id, creds.secret_access_key)
    assert status == 303
    return browser


def record_path(pool: str, identity: str, dataset: str) -> str:
    return f"/pools/{quote(pool, safe='')}/identities/{quote(identity, safe='')}" \
           f"/datasets/{quote(dataset, safe='')}"


def test_the_console_is_off_by_default(server: ServerProcess) -> None:
    status, _, _ = Browser(server.endpoint).request("GET", "/login")
    assert status == 404


def test_sign_in_sets_a_private_session_cookie(console_server: ServerProcess) -> None:
    browser = Browser(console_server.endpoint)
    status, headers, _ = browser.request("GET", "/pools")
    assert status == 303 and headers["location"] == f"{BASE}/login"
    creds = console_server.credentials
    assert creds is not None
    status, headers, _ = browser.sign_in(creds.access_key_id, creds.secret_access_key)
    assert status == 303 and headers["location"] == f"{BASE}/pools"
    session = next(c for c in headers["set-cookie"] if c.startswith("cogsync_console="))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    assert f"Path={BASE}" in session and "Secure" not in session  # plain HTTP here
    assert creds.secret_access_key not in session
    status, headers, page = browser.request("GET", "/pools")
    assert status == 200 and console_server.pool_id in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # Every script and style comes from the console itself.
    assert re.findall(r'(?:src|href)="(https?:[^"]*)"', page) == []
    status, headers, script = browser.request("GET", "/static/htmx.min.js")
    assert status == 200 and "htmx" in script and headers["content-type"].startswith(
        "text/javascript")
    token = browser.csrf()
    status, headers, _ = browser.request("POST", "/logout", {"csrf": token})
    assert status == 303 and "cogsync_console" not in browser.cookies
    assert browser.request("GET", "/pools")[0] == 303


def test_wrong_secret_and_forged_cookie_are_refused(console_server: ServerProcess) -> None:
    browser = Browser(console_server.endpoint)
    creds = console_server.credentials
    assert creds is not None
    status, headers, page = browser.sign_in(creds.access_key_id, "not-the-secret")
    assert status == 401 and "Wrong access key id or secret" in page
    assert not any(c.startswith("cogsync_console=") for c in headers["set-cookie"])
    assert browser.sign_in("admin", "not-the-token")[0] == 401
    logged = "".join(console_server.output)
    assert f"console: refused sign-in for key id '{creds.access_key_id}'" in logged
    assert "not-the-secret" not in logged and "not-the-token" not in logged
    browser.cookies["cogsync_console"] = "c" + "A" * 120
    assert browser.request("GET", "/pools")[0] == 303
    # The sign-in form itself carries a token tied to its cookie.
    fresh = Browser(console_server.endpoint)
    status, _, _ = fresh.request("POST", "/login", {"access_key_id": creds.access_key_id,
                                                    "secret": creds.secret_access_key})
    assert status == 403 and "cogsync_console" not in fresh.cookies


def test_posts_without_the_csrf_token_change_nothing(console_server: ServerProcess,
                                                     operator: Browser) -> None:
    pool, identity = console_server.pool_id, new_identity_id()
    ds = Dataset(console_server.client(), pool, identity, "profile")
    ds.update([put("name", "Ada")])
    path = record_path(pool, identity, "profile") + "/records"
    edit = {"key": "name", "value": "Eve", "sync_count": "1", "action": "save"}
    status, _, page = operator.request("POST", path, edit)
    assert status == 403 and "CSRF" in page
    status, _, _ = operator.request("POST", path, {**edit, "csrf": "wrong"})
    assert status == 403
    status, _, _ = operator.request("POST", path, edit, headers={"X-CSRF-Token": "wrong"})
    assert status == 403
    assert ds.values() == {"name": "Ada"}
    assert ds.describe()["LastModifiedBy"] != "cogsync-operator"
    status, _, _ = operator.request("POST", path, {**edit, "csrf": operator.csrf()})
    assert status == 303
    assert ds.values() == {"name": "Eve"}


def test_an_edit_reaches_the_next_sync_and_a_stale_one_conflicts(
        console_server: ServerProcess, operator: Browser) -> None:
    pool, identity = console_server.pool_id, new_identity_id()
    phone = Dataset(console_server.client(), pool, identity, "settings")
    phone.update([put("theme", "dark"), put("font", "serif")])
    last = phone.list()["DatasetSyncCount"]
    path = record_path(pool, identity, "settings")
    csrf = operator.csrf()
    status, headers, _ = operator.request(
        "POST", path + "/records",
        {"csrf": csrf, "key": "theme", "value": "light", "sync_count": "1", "action": "save"})
    assert status == 303 and "notice=saved" in headers["location"]
    delta = phone.list(last)
    assert [(r["Key"], r["Value"], r["SyncCount"]) for r in delta["Records"]] == [
        ("theme", "light", last + 1)]
    assert delta["DatasetSyncCount"] == last + 1
    # The page still showed SyncCount 1: the record has moved on, so this is refused.
    status, _, page = operator.request(
        "POST", path + "/records",
        {"csrf": csrf, "key": "theme", "value": "blue", "sync_count": "1", "action": "save"})
    assert status == 409 and "Current SyncCount for: theme is: 2 not: 1" in page
    status, _, _ = operator.request(
        "POST", path + "/records",
        {"csrf": csrf, "key": "font", "sync_count": "1", "action": "remove"})
    assert status == 303
    assert phone.values() == {"theme": "light", "font": None}
    status, _, page = operator.request("GET", path + "?search=ligh")
    assert status == 200 and 'data-key="theme"' in page and 'data-key="font"' not in page


def test_each_operator_sees_only_their_account(console_server: ServerProcess) -> None:
    other = json.loads(console_server.cli("accounts", "create", "--json"))
    stranger = Browser(console_server.endpoint)
    assert stranger.sign_in(other["AccessKeyId"], other["SecretAccessKey"])[0] == 303
    status, _, page = stranger.request("GET", "/pools")
    assert status == 200 and console_server.pool_id not in page
    pool_path = f"/pools/{quote(console_server.pool_id, safe='')}"
    assert stranger.request("GET", pool_path)[0] == 404
    status, _, page = stranger.request("GET", "/accounts")
    assert other["AccessKeyId"] in page
    assert console_server.credentials.access_key_id not in page  # type: ignore[union-attr]
    admin = Browser(console_server.endpoint)
    assert admin.sign_in("admin", ADMIN_TOKEN)[0] == 303
    status, _, page = admin.request("GET", "/accounts")
    assert other["AccessKeyId"] in page and console_server.credentials.access_key_id in page  # type: ignore[union-attr]
    assert admin.request("GET", pool_path)[0] == 200
    # A disabled key's sessions end (the server notices within its key cache's 30 s; a
    # new key is looked up at once).
    key = json.loads(console_server.cli("keys", "create", "--account", other["AccountId"],
                                        "--json"))
    late = Browser(console_server.endpoint)
    console_server.cli("keys", "disable", key["AccessKeyId"])
    assert late.sign_in(key["AccessKeyId"], key["SecretAccessKey"])[0] == 401


def test_every_page_answers(console_server: ServerProcess, operator: Browser) -> None:
    pool, identity = console_server.pool_id, new_identity_id()
    Dataset(console_server.client(), pool, identity, "d").update([put("k", "v")])
    pages = ["/accounts", "/pools", f"/pools/{quote(pool, safe='')}", "/outbox", "/bulk",
             "/rates", record_path(pool, identity, "d"),
             f"/pools/{quote(pool, safe='')}/identities/{quote(identity, safe='')}"]
    for page in pages:
        status, _, text = operator.request("GET", page)
        assert status == 200, (page, text)
    # Rates come from the metrics: the calls made between two looks are counted.
    operator.request("GET", "/rates")
    ds = Dataset(console_server.client(), pool, identity, "d")
    for _ in range(5):
        ds.list()
    time.sleep(1.5)  # the metrics take each second's counts
    status, _, text = operator.request("GET", "/rates")
    found = re.search(r"<td>Cognito Sync</td><td>([0-9.]+)</td><td>(\d+)</td>", text)
    assert status == 200 and found and float(found[1]) > 0 and int(found[2]) >= 5, text
    status, headers, text = operator.request(
        "GET", f"/pools/{quote(pool, safe='')}/identities/{quote(identity, safe='')}/export")
    assert status == 200 and json.loads(text)["datasets"][0]["records"][0]["value"] == "v"
    assert operator.request("GET", "/nowhere")[0] == 404
    assert operator.request("DELETE", "/pools")[0] == 405


@independent_of_backend
def test_a_short_admin_token_stops_the_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cogsync", "serve", "--console", "--port", "0",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env={"COGSYNC_CONSOLE_TOKEN": "short", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "COGSYNC_CONSOLE_TOKEN must be 32 characters or more" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1



def test_bad_input_is_refused_as_the_api_refuses_it(console_server: ServerProcess,
                                                    operator: Browser) -> None:
    pool, identity = console_server.pool_id, new_identity_id()
    ds = Dataset(console_server.client(), pool, identity, "d")
    ds.update([put("k", "v")])
    csrf = operator.csrf()
    path = record_path(pool, identity, "d") + "/records"
    for form, says in [
        ({"key": "x" * 1025, "value": "v"}, "1 validation error detected"),
        ({"key": "", "value": "v"}, "validation error"),
        ({"key": "k", "value": "v", "sync_count": "-1"}, "whole number"),
    ]:
        status, _, page = operator.request("POST", path, {"csrf": csrf, "action": "save", **form})
        assert status == 400 and says in page, (form, status, page[-800:])
    status, _, _ = operator.request(
        "POST", record_path(pool, identity, "bad name!") + "/records",
        {"csrf": csrf, "action": "save", "key": "k", "value": "v"})
    assert status == 400
    assert ds.values() == {"k": "v"} and ds.list()["DatasetSyncCount"] == 1
    # A path that only begins like the console's is not the console's.
    conn = http.client.HTTPConnection(operator.host, operator.port, timeout=30)
    conn.request("GET", BASE + "x")
    assert b"<html" not in conn.getresponse().read()
    conn.close()


def test_pool_configuration_changes_as_the_api_changes_it(console_server: ServerProcess,
                                                          operator: Browser) -> None:
    pool = console_server.client("cognito-identity").create_identity_pool(
        IdentityPoolName="configured", AllowUnauthenticatedIdentities=True)["IdentityPoolId"]
    sync = console_server.client()
    csrf = operator.csrf()
    base = f"/pools/{quote(pool, safe='')}"
    arn = "arn:aws:lambda:us-east-1:123456789012:function:resolve"
    status, _, _ = operator.request("POST", base + "/events",
                                    {"csrf": csrf, "sync_trigger": arn})
    assert status == 303
    assert sync.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": arn}
    status, _, page = operator.request("POST", base + "/events",
                                       {"csrf": csrf, "sync_trigger": "not-an-arn"})
    assert status == 400 and "not a Lambda function ARN" in page
    assert sync.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": arn}

    app = "arn:aws:sns:us-east-1:123456789012:app/GCM/example"
    status, _, _ = operator.request("POST", base + "/configuration", {
        "csrf": csrf, "stream_name": "changes", "streaming_status": "ENABLED",
        "push_arns": f"{app}\r\n"})
    assert status == 303
    configured = sync.get_identity_pool_configuration(IdentityPoolId=pool)
    assert configured["CognitoStreams"] == {"StreamName": "changes",
                                            "StreamingStatus": "ENABLED"}
    assert configured["PushSync"] == {"ApplicationArns": [app]}
    status, _, page = operator.request("POST", base + "/configuration", {
        "csrf": csrf, "streaming_status": "ENABLED", "push_arns": "arn:bad"})
    assert status == 400 and "validation error" in page
    status, _, page = operator.request("POST", base + "/configuration", {
        "csrf": csrf, "streaming_status": "ENABLED", "push_arns": ""})
    assert status == 400 and "StreamName is required" in page
    assert sync.get_identity_pool_configuration(IdentityPoolId=pool)["CognitoStreams"] == {
        "StreamName": "changes", "StreamingStatus": "ENABLED"}
    status, _, page = operator.request("GET", base)
    assert status == 200 and "changes" in page and arn in page


def test_a_key_disabled_in_the_console_is_refused_at_once(console_server: ServerProcess,
                                                          operator: Browser) -> None:
    from botocore.exceptions import ClientError

    from tests.server import Credentials

    key = json.loads(console_server.cli("keys", "create", "--json"))
    client = console_server.client(credentials=Credentials(key["AccessKeyId"],
                                                           key["SecretAccessKey"]))
    client.describe_identity_pool_usage(IdentityPoolId=console_server.pool_id)
    colleague = Browser(console_server.endpoint)
    assert colleague.sign_in(key["AccessKeyId"], key["SecretAccessKey"])[0] == 303
    assert colleague.request("GET", "/pools")[0] == 200

    path = f"/keys/{key['AccessKeyId']}/enabled"
    status, _, _ = operator.request("POST", path, {"csrf": operator.csrf(), "enabled": "0"})
    assert status == 303
    assert colleague.request("GET", "/pools")[0] == 303  # signed out
    with pytest.raises(ClientError) as refused:
        client.describe_identity_pool_usage(IdentityPoolId=console_server.pool_id)
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    status, _, _ = operator.request("POST", path, {"csrf": operator.csrf(), "enabled": "1"})
    assert status == 303
    client.describe_identity_pool_usage(IdentityPoolId=console_server.pool_id)
    # Another account's key is not this operator's to change.
    other = json.loads(console_server.cli("accounts", "create", "--json"))
    status, _, _ = operator.request("POST", f"/keys/{other['AccessKeyId']}/enabled",
                                    {"csrf": operator.csrf(), "enabled": "0"})
    assert status == 404
