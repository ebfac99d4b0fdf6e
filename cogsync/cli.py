"""The ``cogsync`` command: serve, keys create, pools create."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

from cogsync.accounts import (
    Bootstrap,
    UnknownAccount,
    bootstrap,
    create_account,
    create_key,
    create_pool,
)
from cogsync.app import SETTINGS_VARIABLE, CogsyncApp, build_components
from cogsync.config import HttpLimits, Limits, Settings, env, settings_to_json
from cogsync.errors import StartupError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", help="database URL (default: SQLite in --data-dir; also COGSYNC_DATABASE_URL)"
    )
    parser.add_argument(
        "--data-dir",
        help="folder for the SQLite file and the master key "
        "(default ./.cogsync; also COGSYNC_DATA_DIR)",
    )
    parser.add_argument(
        "--region", help="region in ids and signatures (default us-east-1; also COGSYNC_REGION)"
    )


def _port(args: argparse.Namespace, default: int) -> int:
    """``--port 0`` is a real choice (any free port), so test for None, not falsiness."""
    port = getattr(args, "port", None)
    if port is not None:
        return int(port)
    return int(env("COGSYNC_PORT", str(default)) or default)


def _synchronous(args: argparse.Namespace, default: str) -> str:
    value = (
        getattr(args, "sqlite_synchronous", None)
        or env("COGSYNC_SQLITE_SYNCHRONOUS", default)
        or default
    ).upper()
    if value not in ("NORMAL", "FULL"):
        raise StartupError(f"COGSYNC_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {value}")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    base = Settings()
    limits = Limits(
        datasets_per_identity=int(env("COGSYNC_MAX_DATASETS", str(Limits.datasets_per_identity))),
        dataset_bytes=int(env("COGSYNC_MAX_DATASET_BYTES", str(Limits.dataset_bytes))),
        session_ttl_seconds=float(
            env("COGSYNC_SESSION_TTL", str(Limits.session_ttl_seconds)) or 3600
        ),
    )
    return replace(
        base,
        host=getattr(args, "host", None) or env("COGSYNC_HOST", base.host) or base.host,
        port=_port(args, base.port),
        data_dir=Path(args.data_dir or env("COGSYNC_DATA_DIR", str(base.data_dir)) or "."),
        database_url=args.database or env("COGSYNC_DATABASE_URL"),
        region=args.region or env("COGSYNC_REGION", base.region) or base.region,
        secret_key=env("COGSYNC_SECRET_KEY"),
        sqlite_synchronous=_synchronous(args, base.sqlite_synchronous),
        open_mode=bool(getattr(args, "open", False)) or env("COGSYNC_OPEN") == "1",
        credentials_lifetime_seconds=float(
            env("COGSYNC_CREDENTIALS_LIFETIME", str(base.credentials_lifetime_seconds)) or 3600
        ),
        openid_issuer=env("COGSYNC_OPENID_ISSUER", base.openid_issuer) or base.openid_issuer,
        oidc_providers=env("COGSYNC_OIDC_PROVIDERS"),
        streams_url=getattr(args, "streams", None) or env("COGSYNC_STREAMS_URL"),
        push_urls=tuple(
            getattr(args, "push", None)
            or [u for u in (env("COGSYNC_PUSH_URLS") or "").split(",") if u]
        ),
        push_webhook_secret=env("COGSYNC_PUSH_WEBHOOK_SECRET"),
        outbox_max_attempts=int(env("COGSYNC_OUTBOX_MAX_ATTEMPTS", "8") or 8),
        outbox_backoff_seconds=float(env("COGSYNC_OUTBOX_BACKOFF", "0.5") or 0.5),
        job_stale_seconds=float(env("COGSYNC_JOB_STALE_SECONDS", "15") or 15),
        lease_seconds=float(env("COGSYNC_LEASE_SECONDS", "10") or 10),
        rate_limit_identity=float(env("COGSYNC_RATE_LIMIT_IDENTITY", "0") or 0),
        rate_limit_pool=float(env("COGSYNC_RATE_LIMIT_POOL", "0") or 0),
        lambda_endpoint=getattr(args, "lambda_endpoint", None) or env("COGSYNC_LAMBDA_ENDPOINT"),
        lambda_timeout_seconds=float(env("COGSYNC_LAMBDA_TIMEOUT", "5") or 5),
        limits=limits,
        http=_http_limits(args),
    )


# --- the HTTP edge's limits and timeouts (flags and COGSYNC_* variables) ----------------

_HTTP_OPTIONS = {  # field: (flag, variable, kind)
    "max_request_line": ("--max-request-line", "COGSYNC_MAX_REQUEST_LINE", "bytes"),
    "max_header_bytes": ("--max-header-bytes", "COGSYNC_MAX_HEADER_BYTES", "bytes"),
    "max_headers": ("--max-headers", "COGSYNC_MAX_HEADERS", "count"),
    "header_timeout": ("--header-timeout", "COGSYNC_HEADER_TIMEOUT", "seconds"),
    "body_timeout": ("--body-timeout", "COGSYNC_BODY_TIMEOUT", "seconds"),
    "keep_alive_timeout": ("--keep-alive-timeout", "COGSYNC_KEEP_ALIVE_TIMEOUT", "seconds"),
    "graceful_timeout": ("--graceful-timeout", "COGSYNC_GRACEFUL_TIMEOUT", "seconds"),
}
_WHOLE = re.compile(r"[1-9][0-9]{0,9}")
_SECONDS = re.compile(r"(?:0|[1-9][0-9]{0,6})(?:\.[0-9]{1,6})?")


def _http_limits(args: argparse.Namespace) -> HttpLimits:
    values: dict[str, int | float] = {}
    for name, (flag, variable, kind) in _HTTP_OPTIONS.items():
        text = getattr(args, name, None) or env(variable)
        if text is None:
            continue
        pattern = _SECONDS if kind == "seconds" else _WHOLE
        if not pattern.fullmatch(text) or (kind == "seconds" and float(text) <= 0):
            raise StartupError(
                f"{flag} (or {variable}) must be a positive number of {kind}, not {text!r}")
        values[name] = float(text) if kind == "seconds" else int(text)
    return HttpLimits(**values)  # type: ignore[arg-type]


def _add_http_flags(parser: argparse.ArgumentParser) -> None:
    defaults = HttpLimits()
    group = parser.add_argument_group("HTTP limits and timeouts (see docs/security.md)")
    for name, (flag, variable, kind) in _HTTP_OPTIONS.items():
        group.add_argument(flag, dest=name, metavar=kind.upper(),
                           help=f"default {getattr(defaults, name)}; also {variable}")


def _print_welcome(settings: Settings, endpoint: str, first: Bootstrap | None) -> None:
    lines = [f"cogsync: Amazon Cognito Sync at {endpoint} (region {settings.region})"]
    if settings.open_mode:
        lines.append("OPEN MODE: requests are not authenticated. Never expose this server.")
    if first is not None:
        lines += [
            "Created a developer key and an identity pool on this new database:",
            f"  AWS_ACCESS_KEY_ID={first.key.access_key_id}",
            f"  AWS_SECRET_ACCESS_KEY={first.key.secret_access_key}",
            f"  IdentityPoolId={first.identity_pool_id}",
            "Try:",
            f"  AWS_ACCESS_KEY_ID={first.key.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={first.key.secret_access_key} \\",
            f"  aws cognito-sync list-identity-pool-usage --endpoint-url {endpoint} "
            f"--region {settings.region}",
        ]
    else:
        lines.append(
            "Get a developer key with: cogsync keys create --json"
            + (
                f" --data-dir {settings.data_dir}"
                if settings.database_url is None
                else " --database <the same URL>"
            )
        )
    print("\n".join(lines), flush=True)


def _serve_workers(args: argparse.Namespace, settings: Settings, workers: int) -> int:
    """Several worker processes on one socket; each builds its app from the settings this
    process hands down."""
    from cogsync.http.server import listen
    from cogsync.http.workers import supervise

    components = build_components(settings)  # migrations and the master key, once
    first = bootstrap(components.store, components.keyring, settings.region)
    components.store.close()
    sock = listen(settings.host, settings.port)  # connections wait in the backlog
    os.environ[SETTINGS_VARIABLE] = settings_to_json(settings)
    _print_welcome(settings, f"http://{settings.host}:{sock.getsockname()[1]}", first)
    return supervise(sock, workers, "cogsync.app:app_from_environment", settings.http,
                     access_log=bool(args.access_log), log_level=args.log_level)


def cmd_serve(args: argparse.Namespace) -> int:
    from cogsync.http.server import listen, run, serve

    settings = _settings(args)
    workers = int(args.workers or env("COGSYNC_WORKERS", "1") or 1)
    if workers > 1:
        return _serve_workers(args, settings, workers)
    components = build_components(settings)
    first = bootstrap(components.store, components.keyring, settings.region)
    app = CogsyncApp(components)
    logging.getLogger("cogsync.http").setLevel(args.log_level.upper())
    sock = listen(settings.host, settings.port)
    endpoint = f"http://{settings.host}:{sock.getsockname()[1]}"
    # The welcome once the application has started, so that what it says is ready is.
    run(serve(app, sock, settings.http, access_log=bool(args.access_log),
              graceful_timeout=settings.http.graceful_timeout,
              on_ready=lambda: _print_welcome(settings, endpoint, first)))
    return 0


def cmd_accounts_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    c = build_components(settings)
    key = create_account(c.store, c.keyring)
    out = {
        "AccountId": key.account_id,
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    c = build_components(settings)
    key = create_key(c.store, c.keyring, args.account)
    out = {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"AccessKeyId: {key.access_key_id}\nSecretAccessKey: {key.secret_access_key}\n"
            f"Account: {key.account_id}"
        )
    return 0


def cmd_pools_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    c = build_components(settings)
    pool_id = create_pool(c.store, c.keyring, args.name, settings.region, args.account)
    if args.json:
        print(json.dumps({"IdentityPoolId": pool_id, "IdentityPoolName": args.name}))
    else:
        print(pool_id)
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    c = build_components(_settings(args))
    status = "dead" if args.dead else "pending"
    with c.store.read() as tx:
        entries = tx.outbox_entries(status, args.limit)
    rows = [
        {
            "Id": e.id,
            "Kind": e.kind,
            "Destination": e.destination,
            "Dataset": e.ordering_key,
            "Attempts": e.attempts,
            "LastError": e.last_error,
            "CreatedAt": e.created_at,
            "Payload": e.payload,
        }
        for e in entries
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(
                f"{row['Id']}\t{row['Kind']}\t{row['Destination']}\t{row['Dataset']}\t"
                f"attempts={row['Attempts']}\t{row['LastError'] or ''}"
            )
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    import time

    c = build_components(_settings(args))
    with c.store.write() as tx:
        count = tx.outbox_requeue_dead(time.time())
    print(json.dumps({"Requeued": count}) if args.json else f"requeued {count} dead entries")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cogsync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    serve.add_argument(
        "--sqlite-synchronous",
        choices=["NORMAL", "FULL", "normal", "full"],
        help="NORMAL survives a process crash (default); FULL also power loss",
    )
    serve.add_argument(
        "--open", action="store_true", help="accept unsigned requests (local testing only)"
    )
    serve.add_argument(
        "--streams",
        help="Cognito Streams backend URL: file://DIR (default "
        "<data-dir>/streams), redis://, nats://, kinesis://HOST:PORT",
    )
    serve.add_argument(
        "--push",
        action="append",
        help="push sync channel (repeatable): sns://HOST:PORT or an http(s):// webhook",
    )
    serve.add_argument(
        "--lambda-endpoint",
        help="Lambda Invoke API endpoint for Sync Trigger (default: AWS Lambda)",
    )
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", default="info")
    _add_http_flags(serve)
    serve.set_defaults(func=cmd_serve)

    accounts = sub.add_parser("accounts", help="accounts").add_subparsers(
        dest="action", required=True
    )
    accounts_create = accounts.add_parser(
        "create", help="create an account with its first developer key"
    )
    _common(accounts_create)
    accounts_create.add_argument("--json", action="store_true")
    accounts_create.set_defaults(func=cmd_accounts_create)

    keys = sub.add_parser("keys", help="developer keys").add_subparsers(
        dest="action", required=True
    )
    keys_create = keys.add_parser("create", help="create a developer key")
    _common(keys_create)
    keys_create.add_argument("--json", action="store_true")
    keys_create.add_argument("--account", help="account id (default: the first account)")
    keys_create.set_defaults(func=cmd_keys_create)

    pools = sub.add_parser("pools", help="identity pools").add_subparsers(
        dest="action", required=True
    )
    pools_create = pools.add_parser("create", help="create an identity pool")
    _common(pools_create)
    pools_create.add_argument("--name", required=True)
    pools_create.add_argument("--json", action="store_true")
    pools_create.add_argument("--account", help="account id (default: the first account)")
    pools_create.set_defaults(func=cmd_pools_create)
    outbox = sub.add_parser("outbox", help="side effects waiting or dead").add_subparsers(
        dest="action", required=True
    )
    outbox_list = outbox.add_parser("list", help="pending (or, with --dead, dead) entries")
    _common(outbox_list)
    outbox_list.add_argument("--dead", action="store_true")
    outbox_list.add_argument("--limit", type=int, default=100)
    outbox_list.add_argument("--json", action="store_true")
    outbox_list.set_defaults(func=cmd_outbox_list)
    outbox_retry = outbox.add_parser("retry", help="deliver the dead entries again")
    _common(outbox_retry)
    outbox_retry.add_argument("--json", action="store_true")
    outbox_retry.set_defaults(func=cmd_outbox_retry)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UnknownAccount, StartupError) as exc:
        print(f"cogsync: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
