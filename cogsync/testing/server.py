"""A real cogsync server for tests: ``cogsync serve --ephemeral --print-json`` on a free
port, started and stopped by :class:`CogsyncServer`."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cogsync.testing.controls import Controls
from cogsync.testing.identities import (
    COGNITO_LOGIN,
    DEVELOPER_PROVIDER,
    KINDS,
    Identity,
    OidcProvider,
)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Variables that would send the AWS SDKs elsewhere, or sign as someone else, when the
# environment points them at cogsync: removed by use_environment().
CLEARED = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
           "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "COGSYNC_IDENTITY_ID")


class ServerError(RuntimeError):
    """The server did not start, or stopped on its own."""


def _stop(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: it stops and removes its data folder
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class CogsyncServer:
    """One cogsync server with a new, empty database, for a test run.

    ``with CogsyncServer() as server:`` (or ``start()`` and ``stop()``) runs ``cogsync
    serve --ephemeral --print-json --test-controls`` on a free port of 127.0.0.1 in a
    subprocess. Its data is gone when it stops. It starts with a developer key and a
    pool (``pool_id``) that allows unauthenticated identities, and knows a test login
    provider (``oidc``). ``args`` adds flags of ``cogsync serve``, ``env`` variables
    (the caller's ``COGSYNC_*`` variables are not passed on, so that the server is the
    same wherever the tests run).
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, *, test_controls: bool = True, oidc: bool = True,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 command: Sequence[str] | None = None, start_timeout: float = START_TIMEOUT):
        self.test_controls = test_controls
        self.args = list(args)
        self.env = dict(env or {})
        self.command = list(command or (sys.executable, "-m", "cogsync"))
        self.start_timeout = start_timeout
        self.oidc: OidcProvider | None = OidcProvider() if oidc else None
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[str] | None = None
        self.errors: collections.deque[str] = collections.deque(maxlen=200)
        self._controls: Controls | None = None
        self._clients: dict[str, Any] = {}  # made without options: kept, boto3's are thread-safe
        self._finalizer: weakref.finalize | None = None

    # --- life -------------------------------------------------------------------

    def start(self) -> CogsyncServer:
        if self.process is not None and self.process.poll() is None:
            return self
        command = [*self.command, "serve", "--ephemeral", "--print-json", "--port", "0",
                   "--host", "127.0.0.1", "--log-level", "warning",
                   *(["--test-controls"] if self.test_controls else []), *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
        if self.oidc is not None:
            env["COGSYNC_OIDC_PROVIDERS"] = json.dumps([self.oidc.config()])
        env.update(self.env)
        self.errors.clear()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, env=env)
        self.process = process
        self._finalizer = weakref.finalize(self, _stop, process)
        lines: queue.Queue[str | None] = queue.Queue()

        def read(stream: Any, into: Any) -> None:
            for line in stream:
                into(line.rstrip("\n"))
            into(None)

        threading.Thread(target=read, args=(process.stdout, lines.put), daemon=True).start()
        threading.Thread(target=read, args=(process.stderr, self._keep_error), daemon=True).start()
        try:
            line = lines.get(timeout=self.start_timeout)
        except queue.Empty:
            line = None
        if not line or not line.startswith("{"):
            self.stop()
            raise ServerError(f"cogsync did not start (exit status {process.poll()}):\n"
                              + "\n".join(self.errors))
        self.info = json.loads(line)
        self._controls = None
        self._clients.clear()
        return self

    def _keep_error(self, line: str | None) -> None:
        if line is not None:
            self.errors.append(line)

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 15 s); its data folder goes."""
        if self.process is not None:
            _stop(self.process)
        if self._finalizer is not None:
            self._finalizer.detach()

    def close(self) -> None:
        """Stops the server and removes the test login provider's files."""
        self.stop()
        if self.oidc is not None:
            self.oidc.remove()

    def __enter__(self) -> CogsyncServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- what it printed --------------------------------------------------------

    def _field(self, name: str) -> Any:
        if not self.info:
            raise ServerError("the server is not started: call start(), or use it in a with")
        return self.info[name]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: Cognito Sync and Cognito Identity both."""
        return str(self._field("Endpoint"))

    @property
    def region(self) -> str:
        return str(self._field("Region"))

    @property
    def access_key_id(self) -> str:
        return str(self._field("AccessKeyId"))

    @property
    def secret_access_key(self) -> str:
        return str(self._field("SecretAccessKey"))

    @property
    def account_id(self) -> str:
        return str(self._field("AccountId"))

    @property
    def pool_id(self) -> str:
        """The pool the server made at its start (unauthenticated identities allowed)."""
        return str(self._field("IdentityPoolId"))

    @property
    def pid(self) -> int:
        return int(self._field("Pid"))

    # --- clients ----------------------------------------------------------------

    def environment(self, pool_id: str | None = None) -> dict[str, str]:
        """The variables that point the AWS SDKs (boto3, the AWS CLI, JavaScript v3)
        at this server with its developer key, and ``COGSYNC_POOL_ID``."""
        return {
            **self._field("Environment"),
            "AWS_REGION": self.region,
            "COGSYNC_POOL_ID": pool_id or self.pool_id,
        }

    def client(self, service: str, *, retries: int = 0, **options: Any) -> Any:
        """A boto3 client of ``service`` for this server, with its developer key unless
        ``options`` gives other credentials. ``retries`` is 0 by default, so that an
        injected throttling or 5xx reaches the test instead of boto3 retrying it."""
        import boto3
        from botocore.config import Config

        options.setdefault("aws_access_key_id", self.access_key_id)
        options.setdefault("aws_secret_access_key", self.secret_access_key)
        options.setdefault("config", Config(retries={"total_max_attempts": retries + 1,
                                                     "mode": "standard"}))
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            **options)

    def _kept(self, name: str, make: Any) -> Any:
        if name not in self._clients:
            self._clients[name] = make()
        return self._clients[name]

    def sync_client(self, **options: Any) -> Any:
        """A Cognito Sync client with the developer key (the same one each time, unless
        ``options`` are given)."""
        if options:
            return self.client("cognito-sync", **options)
        return self._kept("sync", lambda: self.client("cognito-sync"))

    def identity_client(self, **options: Any) -> Any:
        """A Cognito Identity client with the developer key (pools, developer logins)."""
        if options:
            return self.client("cognito-identity", **options)
        return self._kept("identity", lambda: self.client("cognito-identity"))

    def public_identity_client(self) -> Any:
        """A Cognito Identity client that signs nothing, as an app before sign-in."""
        from botocore import UNSIGNED
        from botocore.config import Config

        return self._kept("public", lambda: self.client("cognito-identity", config=Config(
            signature_version=UNSIGNED, retries={"total_max_attempts": 1, "mode": "standard"})))

    @property
    def controls(self) -> Controls:
        """Faults and server-side moves (needs ``test_controls``, the default)."""
        if self._controls is None:
            self._controls = Controls(self.endpoint, self.region, self.access_key_id,
                                      self.secret_access_key)
        return self._controls

    # --- pools and identities ---------------------------------------------------

    def create_pool(self, name: str | None = None, *, unauthenticated: bool = True,
                    **attributes: Any) -> str:
        """A new identity pool of the developer's account: unauthenticated identities
        allowed (unless told otherwise), the developer provider ``login.cogsync.test``,
        and the test login provider. ``attributes`` go to CreateIdentityPool."""
        attributes.setdefault("DeveloperProviderName", DEVELOPER_PROVIDER)
        if self.oidc is not None:
            attributes.setdefault("OpenIdConnectProviderARNs",
                                  [self.oidc.arn(self.account_id)])
        return str(self.identity_client().create_identity_pool(
            IdentityPoolName=name or f"test-{uuid.uuid4().hex[:12]}",
            AllowUnauthenticatedIdentities=unauthenticated, **attributes)["IdentityPoolId"])

    def delete_pool(self, pool_id: str) -> None:
        self.identity_client().delete_identity_pool(IdentityPoolId=pool_id)

    def new_identity(self, pool_id: str | None = None, kind: str = "unauthenticated",
                     user: str | None = None) -> Identity:
        """A new identity of the pool and its temporary credentials, the way an app
        gets them: ``unauthenticated`` (GetId), ``developer`` (your backend's
        GetOpenIdTokenForDeveloperIdentity for ``user``) or ``oidc`` (a login with an id
        token of the test provider for ``user``). The same ``user`` gets the same
        identity again."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        pool_id = pool_id or self.pool_id
        user = user or f"user-{uuid.uuid4().hex[:12]}"
        public = self.public_identity_client()
        logins: dict[str, str] = {}
        if kind == "developer":
            answer = self.identity_client().get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: user})
            identity_id, logins = answer["IdentityId"], {COGNITO_LOGIN: answer["Token"]}
        else:
            if kind == "oidc":
                if self.oidc is None:
                    raise ValueError("this server was started without the test login provider")
                logins = {self.oidc.name: self.oidc.token(user)}
            identity_id = public.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
        credentials = public.get_credentials_for_identity(
            IdentityId=identity_id, Logins=logins)["Credentials"]
        return Identity(self, pool_id, identity_id, kind, logins, credentials)


@contextlib.contextmanager
def use_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Sets ``variables`` in ``os.environ`` (and removes the ones that would send the
    AWS SDKs elsewhere: ``AWS_PROFILE``, ``AWS_SESSION_TOKEN``...) for the block, so
    that code under test that makes its own clients finds cogsync."""
    saved = {name: os.environ.get(name) for name in (*variables, *CLEARED)}
    try:
        for name in CLEARED:
            os.environ.pop(name, None)
        os.environ.update(variables)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
