"""pytest fixtures for testing an app against cogsync.

Installed with cogsync as the pytest plugin ``cogsync`` (the ``pytest11`` entry point);
``-p no:cogsync`` turns it off. It only adds fixtures, all named ``cogsync_...``, and
starts nothing until a test asks for one: then one server runs for the whole session
(each pytest-xdist worker has its own). Each test gets a pool of its own
(``cogsync_pool``), and the faults it injected are cleared after it.

Override ``cogsync_server_options`` in a conftest.py to start the server otherwise:
``return {"args": ["--region", "eu-west-1"], "env": {"COGSYNC_MAX_DATASETS": "5"}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cogsync.testing.controls import Controls
from cogsync.testing.identities import Identity, OidcProvider
from cogsync.testing.server import CLEARED, CogsyncServer


@pytest.fixture(scope="session")
def cogsync_server_options() -> dict[str, Any]:
    """Keyword arguments of :class:`CogsyncServer` for the session's server."""
    return {}


@pytest.fixture(scope="session")
def cogsync_server(cogsync_server_options: dict[str, Any]) -> Iterator[CogsyncServer]:
    """One cogsync server for the session: new, empty, on a free port, test controls on."""
    with CogsyncServer(**cogsync_server_options) as server:
        yield server


@pytest.fixture
def cogsync_pool(cogsync_server: CogsyncServer) -> Iterator[str]:
    """A new identity pool for this test (unauthenticated identities allowed, the
    developer provider ``login.cogsync.test``, the test login provider); deleted after."""
    pool_id = cogsync_server.create_pool()
    yield pool_id
    cogsync_server.delete_pool(pool_id)


@pytest.fixture(scope="session")
def cogsync_sync_client(cogsync_server: CogsyncServer) -> Any:
    """A boto3 ``cognito-sync`` client with the server's developer key (no retries)."""
    return cogsync_server.sync_client()


@pytest.fixture(scope="session")
def cogsync_identity_client(cogsync_server: CogsyncServer) -> Any:
    """A boto3 ``cognito-identity`` client with the server's developer key."""
    return cogsync_server.identity_client()


@pytest.fixture
def cogsync_new_identity(cogsync_server: CogsyncServer,
                         cogsync_pool: str) -> Callable[..., Identity]:
    """``cogsync_new_identity(kind="unauthenticated" | "developer" | "oidc", user=None)``:
    a new identity of this test's pool with its temporary credentials."""

    def make(kind: str = "unauthenticated", user: str | None = None,
             pool_id: str | None = None) -> Identity:
        return cogsync_server.new_identity(pool_id or cogsync_pool, kind, user)

    return make


@pytest.fixture
def cogsync_env(cogsync_server: CogsyncServer, cogsync_pool: str,
                monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """For this test, the environment points the AWS SDKs at the server (endpoints,
    region, developer key) and ``COGSYNC_POOL_ID`` names this test's pool: code that
    makes its own clients finds cogsync. Returns the variables set."""
    variables = cogsync_server.environment(cogsync_pool)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def cogsync_controls(cogsync_server: CogsyncServer) -> Iterator[Controls]:
    """Faults and server-side moves; the faults are cleared after the test."""
    controls = cogsync_server.controls
    yield controls
    controls.clear()


@pytest.fixture(scope="session")
def cogsync_oidc(cogsync_server: CogsyncServer) -> OidcProvider:
    """The test login provider the server trusts: ``cogsync_oidc.token("alice")``."""
    if cogsync_server.oidc is None:
        pytest.skip("the cogsync server runs without the test login provider")
    return cogsync_server.oidc
