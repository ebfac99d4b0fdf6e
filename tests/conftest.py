"""Fixtures: real cogsync servers on free ports, and boto3 clients for them.

``server`` is one server shared by the whole run (tests keep apart by using fresh
identity ids); ``make_server`` starts private servers for tests that restart, kill or
configure one.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServerProcess, backend, drop_test_schemas, new_identity_id

# scripts/test runs each backend's pass as a background job, and a non-interactive shell
# starts those with SIGINT ignored, which every process the tests start would inherit
# (an ignored signal stays ignored across exec): then Ctrl-C tests could not interrupt
# anything. A handled signal goes back to its default in a child, as at a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_test_schemas()


def pytest_report_header() -> str:
    return f"cogsync test backend: {backend()}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server")).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(*extra_args: str, env: dict[str, str] | None = None,
             data_dir: Path | None = None) -> ServerProcess:
        folder = data_dir or tmp_path / f"server{len(started)}"
        proc = ServerProcess(folder, list(extra_args), env or {}).start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def sync(server: ServerProcess) -> Any:
    """A boto3 cognito-sync client with the shared server's developer key."""
    return server.client()


@pytest.fixture(scope="session")
def pool_id(server: ServerProcess) -> str:
    return server.pool_id


@pytest.fixture
def identity_id() -> str:
    return new_identity_id()


@pytest.fixture(scope="session")
def raw(server: ServerProcess) -> Any:
    """Hand-made requests to the shared server, signed with its developer key."""
    from tests.test_wire_errors import SignedHttp

    return SignedHttp(server)


@pytest.fixture
def where(pool_id: str, identity_id: str) -> dict[str, str]:
    """A dataset of a fresh identity in the shared pool."""
    return {"IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": "data"}
