"""/_cogsync/metrics on a real server: the values after known traffic from boto3, the
sum over several workers, who may read them, and the Grafana dashboard's queries."""

from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.server import ServerProcess, independent_of_backend, new_identity_id, wait_until
from tests.test_sync_semantics import Dataset, put

ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(url: str, token: str | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def scrape(srv: ServerProcess, token: str | None = None) -> Samples:
    status, headers, body = fetch(srv.endpoint + "/_cogsync/metrics", token)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of this name whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


UPDATE = {"service": "cognito-sync", "operation": "UpdateRecords"}


def test_counts_after_known_traffic(make_server: Any) -> None:
    srv = make_server()
    identity = new_identity_id()
    ds = Dataset(srv.client(), srv.pool_id, identity)
    ds.list()  # the key's first use is written down: before the counting starts
    before = scrape(srv)
    n = 5
    for i in range(n):
        token = ds.list()["SyncSessionToken"]
        ds.update([put(f"k{i}", "v")], token=token)
    with pytest.raises(ClientError):  # a conflict: 409, counted apart
        ds.update([put("k0", "again", count=0)])
    after = scrape(srv)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {**UPDATE, "status": "200", "credentials": "developer"}
    assert delta("cogsync_requests_total", **ok) == n
    assert delta("cogsync_requests_total", **{**ok, "status": "409"}) == 1
    assert delta("cogsync_requests_total", service="cognito-sync", operation="ListRecords",
                 status="200", credentials="developer") == n + 1  # one by the conflict
    assert delta("cogsync_request_duration_seconds_count", **UPDATE) == n + 1
    assert delta("cogsync_request_duration_seconds_bucket", **UPDATE, le="+Inf") == n + 1
    assert delta("cogsync_request_duration_seconds_sum", **UPDATE) > 0
    assert delta("cogsync_sync_sessions_total") == n + 1
    # Every write was committed in a transaction that was timed; on SQLite the writes of
    # a turn of the event loop share one group commit, each counted in its batch size.
    if srv.database is None:
        assert delta("cogsync_group_commit_writes_sum") == n  # the conflict wrote nothing
        assert delta("cogsync_store_transaction_seconds_count", kind="group") >= n
    else:
        assert delta("cogsync_store_transaction_seconds_count", kind="write") >= n
    assert value(after, "cogsync_database_up") == 1
    assert value(after, "cogsync_db_connections", state="open") >= 1
    for channel in ("stream", "push"):
        assert (("cogsync_outbox_pending", frozenset({("channel", channel)})) in after)
        assert value(after, "cogsync_outbox_dead_letters", channel=channel) == 0
    assert ("cogsync_sqlite_wal_bytes", frozenset()) in after or srv.database is not None


@independent_of_backend
def test_refusals_of_the_rate_limit_are_counted(make_server: Any) -> None:
    srv = make_server(env={"COGSYNC_RATE_LIMIT_POOL": "1"})
    client = srv.client()
    refused = 0
    for _ in range(6):
        try:
            client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id())
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            refused += 1
    assert refused >= 1
    samples = scrape(srv)
    assert value(samples, "cogsync_rate_limit_refusals_total", scope="pool") == refused
    assert value(samples, "cogsync_requests_total", service="cognito-sync",
                 operation="ListDatasets", status="429", credentials="developer") == refused


@independent_of_backend
def test_refusals_of_the_http_edge_are_counted(make_server: Any) -> None:
    srv = make_server()
    url = urllib.parse.urlparse(srv.endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"GET /_cogsync/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
                     + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 431")
    assert value(scrape(srv), "cogsync_http_refusals_total", status="431") == 1


def test_live_channel_connections_are_a_gauge(make_server: Any) -> None:
    from urllib.parse import urlparse

    from tests.test_push import Household, presigned_live_url

    srv = make_server()
    home = Household(srv)
    assert value(scrape(srv), "cogsync_live_connections") == 0
    url = urlparse(presigned_live_url(srv, home.pool, home.identity, home.creds))
    stream = socket.create_connection((url.hostname, url.port), timeout=10)
    stream.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n"
                   .encode())
    assert stream.recv(4096).startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: value(scrape(srv), "cogsync_live_connections") == 1)
    # Gone at once (a reset). A client that only half-closes is noticed at the next
    # keep-alive comment, within 15 s: a half-closed client may still be reading.
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.close()
    assert wait_until(lambda: value(scrape(srv), "cogsync_live_connections") == 0)
    assert wait_until(lambda: value(scrape(srv), "cogsync_requests_total", service="cogsync",
                                    operation="live", status="200",
                                    credentials="identity") == 1)


def test_outbox_and_dead_letters_per_channel(make_server: Any) -> None:
    from tests.identity_helpers import sync_client_for
    from tests.peers import HttpReceiver, free_port
    from tests.test_push import Household

    hook = HttpReceiver(lambda body: 500).start()  # a push channel that always fails
    try:
        srv = make_server("--push", hook.url, env={"COGSYNC_OUTBOX_MAX_ATTEMPTS": "2",
                                                   "COGSYNC_OUTBOX_BACKOFF": "0.05"})
        home = Household(srv)
        count = home.write_from_phone("k", "v")  # one push, to the tablet
        assert wait_until(lambda: value(scrape(srv), "cogsync_outbox_dead_letters",
                                        channel="push") == 1)
        samples = scrape(srv)
        assert value(samples, "cogsync_outbox_pending", channel="push") == 0
        assert value(samples, "cogsync_outbox_oldest_pending_age_seconds", channel="push") == 0
        assert value(samples, "cogsync_outbox_deliveries_total", channel="push",
                     outcome="retry") == 1
        assert value(samples, "cogsync_outbox_deliveries_total", channel="push",
                     outcome="dead") == 1
    finally:
        hook.stop()
    # A push no one takes (nothing listens): pending, and its age grows.
    srv.restart(["--push", f"http://127.0.0.1:{free_port()}/hook"])
    home.ds = Dataset(sync_client_for(srv, home.creds), home.pool, home.identity, "notes")
    home.write_from_phone("k", "w", count)
    samples = scrape(srv)
    assert value(samples, "cogsync_outbox_pending", channel="push") >= 1
    assert value(samples, "cogsync_outbox_oldest_pending_age_seconds", channel="push") > 0


@independent_of_backend
def test_sync_trigger_outcomes(make_server: Any) -> None:
    from tests.peers import DUMMY_AWS
    from tests.test_sync_trigger import FunctionServer, identity_dataset

    functions = FunctionServer()
    try:
        srv = make_server("--lambda-endpoint", functions.endpoint, env=DUMMY_AWS)
        for function, outcome in (("modify", "ok"), ("throttle", "throttled"),
                                  ("garbage", "invalid_output")):
            mine, _ = identity_dataset(srv, function)
            try:
                mine.update([put("k", "v")])
            except ClientError:
                assert outcome != "ok"
            samples = scrape(srv)
            assert value(samples, "cogsync_sync_trigger_invocations_total", outcome=outcome) == 1
        assert value(samples, "cogsync_sync_trigger_duration_seconds_count") == 3
    finally:
        functions.httpd.shutdown()


def test_two_workers_answer_the_sum_of_both(make_server: Any, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    srv = make_server("--workers", "2", "--log-format", "json", env={"TMPDIR": str(temp)})
    # The supervisor's, for this server (made as the workers start, after the greeting).
    (metrics_dir,) = wait_until(lambda: list(temp.glob("cogsync-metrics-*")))
    identity = new_identity_id()
    n = 12
    for i in range(n):  # a new client, a new connection: the kernel spreads them
        Dataset(srv.client(), srv.pool_id, identity, f"set{i}").update([put("k", "v")])
    pids = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, "both workers counted requests"
    ok = {**UPDATE, "status": "200", "credentials": "developer"}
    # Each worker adds its counts to the shared files each second (and when scraped).
    assert wait_until(lambda: value(scrape(srv), "cogsync_requests_total", **ok) == n)
    seen = set()
    for _ in range(6):  # whichever worker answers, it answers the sum
        samples = scrape(srv)
        seen.add(value(samples, "cogsync_requests_total", **ok))
        assert value(samples, "cogsync_request_duration_seconds_count", **UPDATE) == n
    assert seen == {n}
    assert srv.process is not None
    srv.process.send_signal(signal.SIGTERM)
    assert srv.process.wait(30) == 0
    assert not metrics_dir.exists(), "the metrics files are removed when the server stops"


def _outward_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@independent_of_backend
def test_metrics_are_for_this_machine_or_the_token(make_server: Any) -> None:
    outward = _outward_address()
    srv = make_server("--host", "0.0.0.0")
    port = srv.endpoint.rsplit(":", 1)[1]
    assert fetch(srv.endpoint + "/_cogsync/metrics")[0] == 200  # from loopback
    if outward is not None:
        status, _, body = fetch(f"http://{outward}:{port}/_cogsync/metrics")
        assert status == 403 and b"--metrics-token" in body
        assert fetch(f"http://{outward}:{port}/_cogsync/health")[0] == 200

    token = "s3cret-metrics-token-for-the-test"
    guarded = make_server("--host", "0.0.0.0", env={"COGSYNC_METRICS_TOKEN": token})
    url = guarded.endpoint + "/_cogsync/metrics"
    status, headers, _ = fetch(url)  # with a token set, loopback needs it too
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert fetch(url, "wrong-token-of-the-right-length")[0] == 401
    assert fetch(url, token)[0] == 200
    if outward is not None:
        port = guarded.endpoint.rsplit(":", 1)[1]
        assert fetch(f"http://{outward}:{port}/_cogsync/metrics", token)[0] == 200
    assert scrape(guarded, token)  # the scrape's own request counted
    request = urllib.request.Request(url, method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405


def _queried_names(dashboard: Any) -> set[str]:
    import re

    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("expr", "query") and isinstance(item, str):
                    names.update(re.findall(r"\b(cogsync_[a-z_]+|process_[a-z_]+)\b", item))
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard)
    return names


def test_the_grafana_dashboard_queries_metrics_that_exist(server: ServerProcess) -> None:
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["panels"]
    queried = _queried_names(dashboard)
    assert len(queried) >= 10
    _, _, body = fetch(server.endpoint + "/_cogsync/metrics")
    exported: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum"),
                    "gauge": ("",)}.get(family.type, ("",))
        exported.update(family.name + suffix for suffix in suffixes)
    if server.database is not None:  # PostgreSQL: no SQLite log to measure
        queried = {name for name in queried if not name.startswith("cogsync_sqlite_")}
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"



@independent_of_backend
def test_tallies_of_many_threads_lose_nothing() -> None:
    """The hot path's per-thread tallies, flushed while the threads still count."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from cogsync.metrics import Tally

    registry = CollectorRegistry()
    counter = Counter("t_events", "test", registry=registry)
    histogram = Histogram("t_seconds", "test", buckets=(0.001, 0.01), registry=registry)
    tally = Tally()

    def work() -> None:
        for i in range(20_000):
            tally.count(counter)
            tally.observe(histogram, 0.005 if i % 2 else 0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        tally.flush()  # meanwhile: what it adds is what grew since the last flush
    tally.flush()
    assert registry.get_sample_value("t_events_total") == 80_000
    assert registry.get_sample_value("t_seconds_count") == 80_000
    assert registry.get_sample_value("t_seconds_bucket", {"le": "0.001"}) == 0
    assert registry.get_sample_value("t_seconds_bucket", {"le": "0.01"}) == 40_000
    assert registry.get_sample_value("t_seconds_sum") == pytest.approx(40_000 * 0.505)
