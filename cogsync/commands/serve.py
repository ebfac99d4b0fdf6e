"""``cogsync serve``: bind the port, open the database, greet, and serve."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from cogsync.commands.base import add_option_flags, settings_of
from cogsync.commands.ephemeral import temporary_data
from cogsync.config import EVERY, SERVE, Settings, settings_to_json
from cogsync.errors import StartupError

if TYPE_CHECKING:
    from cogsync.accounts import Bootstrap

READY_LINE = "Ready. Stop with Ctrl-C."


def bind(settings: Settings) -> socket.socket:
    """The listening socket, before anything is written: a busy port fails the start
    while the database is still untouched."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"--host {settings.host!r} is not an address here: {exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {settings.port} on {settings.host} is already in use (another cogsync?): "
                "stop it, or choose another with --port (0 picks a free one)"
            ) from None
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    sock.listen(2048)  # connections made before the server is up wait in the backlog
    sock.set_inheritable(True)
    return sock


def welcome(settings: Settings, endpoint: str, first: Bootstrap | None) -> str:
    from cogsync import __version__

    ephemeral = " (ephemeral: removed when the server stops)" if settings.ephemeral else ""
    lines = [
        f"cogsync {__version__}: Amazon Cognito Sync at {endpoint} (region {settings.region})",
        f"Data: {settings.database_label}{ephemeral}",
    ]
    if settings.open_mode:
        lines.append(
            "OPEN MODE: signatures are not verified; any credentials are accepted. "
            "Never expose this server."
        )
    if settings.console:
        lines.append(f"Console: {endpoint}/_cogsync/console (sign in with a developer key)")
    if settings.test_controls:
        lines.append(
            "TEST CONTROLS: developer keys can inject faults and move data under "
            "/_cogsync/test/. Never in production."
        )
    if first is not None:
        pool = f"  IdentityPoolId={first.identity_pool_id}" if first.identity_pool_id else None
        lines += [
            "Created a developer key and an identity pool (unauthenticated identities "
            "allowed) on this new database:"
            if first.new
            else "The first developer key has not been used yet; here it is again (shown "
            "at each start until a request uses it):",
            f"  AWS_ACCESS_KEY_ID={first.key.access_key_id}",
            f"  AWS_SECRET_ACCESS_KEY={first.key.secret_access_key}",
            *([pool] if pool else []),
            "To use them from a shell (boto3 and the AWS CLI read these variables):",
            f"  export AWS_ENDPOINT_URL_COGNITO_SYNC={endpoint} "
            f"AWS_ENDPOINT_URL_COGNITO_IDENTITY={endpoint}",
            f"  export AWS_DEFAULT_REGION={settings.region} "
            f"AWS_ACCESS_KEY_ID={first.key.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={first.key.secret_access_key}",
            *([f"  export COGSYNC_POOL_ID={first.identity_pool_id}"] if pool else []),
            "  aws cognito-sync list-identity-pool-usage",
        ]
    else:
        where = (
            f"--data-dir {settings.data_dir}"
            if settings.database_url is None
            else "--database <the same URL>"
        )
        lines.append(f"Developer keys: cogsync keys list {where} (cogsync keys create makes one)")
    lines.append(READY_LINE)
    return "\n".join(lines)


def ready_json(settings: Settings, endpoint: str, first: Bootstrap | None) -> str:
    """The one line ``--print-json`` prints when the server is ready: what a test harness
    in any language needs to call it, and the variables that point the AWS SDKs at it."""
    from cogsync import __version__

    key = first.key if first is not None else None
    pool = first.identity_pool_id if first is not None else None
    environment = {
        "AWS_ENDPOINT_URL_COGNITO_SYNC": endpoint,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY": endpoint,
        "AWS_DEFAULT_REGION": settings.region,
        "COGSYNC_ENDPOINT": endpoint,
    }
    if key is not None:
        environment["AWS_ACCESS_KEY_ID"] = key.access_key_id
        environment["AWS_SECRET_ACCESS_KEY"] = key.secret_access_key
    if pool is not None:
        environment["COGSYNC_POOL_ID"] = pool
    return json.dumps(
        {
            "Endpoint": endpoint,
            "IdentityEndpoint": endpoint,
            "Region": settings.region,
            "AccessKeyId": key.access_key_id if key else None,
            "SecretAccessKey": key.secret_access_key if key else None,
            "AccountId": key.account_id if key else None,
            "IdentityPoolId": pool,
            "Pid": os.getpid(),
            "DataDir": str(settings.data_dir.resolve()),
            "Database": settings.database_label,
            "Ephemeral": settings.ephemeral,
            "OpenMode": settings.open_mode,
            "TestControls": settings.test_controls,
            "Version": __version__,
            "Environment": environment,
        }
    )


def announce(settings: Settings, endpoint: str, first: Bootstrap | None) -> None:
    """The welcome on standard output; with --print-json, the JSON line there instead,
    and the welcome on standard error."""
    if not settings.print_json:
        say(welcome(settings, endpoint, first))
        return
    if settings.log_format == "json":  # standard error holds JSON lines only
        logger = logging.getLogger("cogsync")  # shown at every --log-level, as in text
        logger.handle(logger.makeRecord("cogsync", logging.INFO, __file__, 0,
                                        welcome(settings, endpoint, first), (), None))
    else:
        print(welcome(settings, endpoint, first), file=sys.stderr, flush=True)
    say(ready_json(settings, endpoint, first))


def say(text: str) -> None:
    """Prints to standard output; a reader that went away (``| head``) is no error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _serve_workers(settings: Settings, sock: socket.socket, first: Bootstrap | None) -> int:
    """Several worker processes on one socket under a small supervisor; each builds its
    app from the settings this process hands down."""
    from cogsync.app import SETTINGS_VARIABLE
    from cogsync.http.workers import supervise

    os.environ[SETTINGS_VARIABLE] = settings_to_json(settings)
    announce(settings, _endpoint(settings, sock), first)
    return supervise(sock, settings.workers, "cogsync.app:app_from_environment", settings.http,
                     log_level=settings.log_level, log_format=settings.log_format)


def _endpoint(settings: Settings, sock: socket.socket) -> str:
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    return f"http://{host}:{sock.getsockname()[1]}"


def serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    sock = bind(settings)
    with temporary_data(settings) as settings:
        return _serve(settings, sock)


def _serve(settings: Settings, sock: socket.socket) -> int:
    from cogsync.accounts import bootstrap
    from cogsync.app import CogsyncApp
    from cogsync.components import build_components

    components = build_components(settings)
    first = bootstrap(
        components.store,
        components.keyring,
        settings.region,
        settings.bootstrap_access_key_id,
        settings.bootstrap_secret_access_key,
        settings.bootstrap_pool_id,
    )
    if settings.workers > 1:
        components.store.close()
        return _serve_workers(settings, sock, first)
    from cogsync.http.server import LifespanFailed, run
    from cogsync.http.server import serve as serve_http
    from cogsync.logs import level_number

    logging.getLogger("cogsync.http").setLevel(level_number(settings.log_level))
    # Greet once the application has started, so that a client that reads the greeting
    # finds a server that answers.
    try:
        run(serve_http(CogsyncApp(components), sock, settings.http,
                       graceful_timeout=settings.http.graceful_timeout,
                       on_ready=lambda: announce(settings, _endpoint(settings, sock), first)))
    except LifespanFailed as exc:
        print(f"cogsync: the server did not start: {exc}", file=sys.stderr)
        return 3
    return 0

def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the Cognito Sync and Cognito Identity server. On a new database "
        "it creates an account, a developer key and an identity pool, and prints them.",
    )
    add_option_flags(parser, (EVERY, SERVE))
    parser.set_defaults(func=serve)
