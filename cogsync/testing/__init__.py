"""Test your app against a real cogsync: a server per test run, clients, identities,
injected faults and server-side moves.

    from cogsync.testing import CogsyncServer

    with CogsyncServer() as server:          # cogsync serve --ephemeral on a free port
        sync = server.sync_client()          # boto3, with the server's developer key
        me = server.new_identity(kind="developer", user="alice")
        server.controls.fail("UpdateRecords", "TooManyRequestsException", count=2)

With pytest, the fixtures of :mod:`cogsync.testing.plugin` (``cogsync_server``,
``cogsync_pool``, ``cogsync_sync_client``...) do this for you. Importing this module
imports neither pytest nor boto3 (each client method imports boto3 when called).
"""

from cogsync.testing.controls import ControlError, Controls
from cogsync.testing.identities import (
    DEVELOPER_PROVIDER,
    OIDC_CLIENT_ID,
    OIDC_PROVIDER,
    Identity,
    OidcProvider,
)
from cogsync.testing.server import CogsyncServer, ServerError, use_environment

__all__ = [
    "DEVELOPER_PROVIDER",
    "OIDC_CLIENT_ID",
    "OIDC_PROVIDER",
    "CogsyncServer",
    "ControlError",
    "Controls",
    "Identity",
    "OidcProvider",
    "ServerError",
    "use_environment",
]
