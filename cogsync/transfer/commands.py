"""The ``import``, ``export`` and ``restore`` commands of ``cogsync``.

``register(subparsers)`` adds them to the main parser. Every failure ends with one line
on standard error and exit status 2 (130 after Ctrl-C); never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cogsync.commands.base import add_option_flags, open_database, settings_of
from cogsync.config import EVERY, Settings
from cogsync.crypto import MasterKey
from cogsync.store.database import Store
from cogsync.transfer.errors import TransferError

Command = Callable[[argparse.Namespace], int]

EXIT_SKIPPED, EXIT_ERROR, EXIT_INTERRUPTED = 1, 2, 130


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _guarded(command: Command) -> Command:
    """Transfer errors and database errors as one line (others: cogsync.cli.main)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except TransferError as exc:
            print(f"cogsync: {_one_line(str(exc))}", file=sys.stderr)
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            print(f"cogsync: database error: {_one_line(str(cause)).split(' [SQL')[0]}",
                  file=sys.stderr)
        return EXIT_ERROR

    return run


# --- the database -----------------------------------------------------------------------

def _master_key(settings: Settings) -> MasterKey:
    """The master key the components were built with (its file exists by then)."""
    if settings.secret_key:
        return MasterKey.decode(settings.secret_key)
    return MasterKey.load_or_create(settings.key_file)


def _open(args: argparse.Namespace, *, create: bool) -> tuple[Store, MasterKey]:
    """The database of --data-dir / --database (migrated), and the master key. Without
    ``create``, a database that does not exist is an error, not a new empty one."""
    from cogsync.components import build_components

    components = build_components(settings_of(args)) if create else open_database(args)
    return components.store, _master_key(components.settings)


# --- import ---------------------------------------------------------------------------

def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError("must be from 1 to 1024")
    return value


def _retries(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _state_name(source_pool: str, target_pool: str) -> str:
    def safe(text: str) -> str:
        return "".join(c if c.isalnum() or c in "-." else "_" for c in text)

    if source_pool == target_pool:
        return f"import-{safe(source_pool)}.state"
    return f"import-{safe(source_pool)}-into-{safe(target_pool)}.state"


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    from cogsync.transfer.importer import Importer, ImportOptions
    from cogsync.transfer.report import ImportReport, ProgressBar
    from cogsync.transfer.source import CallStats, Source, SourceOptions

    stats = CallStats()
    source = Source(
        SourceOptions(
            endpoint=args.source, pool_id=args.pool, region=args.source_region,
            profile=args.profile, access_key_id=args.access_key_id,
            secret_access_key=args.secret_access_key, session_token=args.session_token,
            page_size=args.page_size, max_retries=args.max_retries,
            concurrency=args.concurrency,
        ),
        stats,
    )
    store, _ = _open(args, create=False)
    settings = settings_of(args)
    target_pool = args.into or args.pool
    state_path = Path(args.state) if args.state else (
        settings.data_dir / _state_name(args.pool, target_pool))
    if not args.dry_run:
        state_path.parent.mkdir(parents=True, exist_ok=True)
    report = ImportReport(source.where, args.pool, target_pool, args.dry_run, stats)
    importer = Importer(
        store, source,
        ImportOptions(
            into=args.into, account=args.account, since=args.since, prune=args.prune,
            dry_run=args.dry_run,
            identities_file=Path(args.identities) if args.identities else None,
            state_path=state_path,
        ),
        report, ProgressBar(enabled=not args.no_progress),
    )
    status = 0
    try:
        importer.run()
    except KeyboardInterrupt:
        report.interrupted = True
    except TransferError as exc:
        if report.pass_number == 0:
            raise  # nothing was imported: the one line says it all
        report.error = str(exc)
    finally:
        store.close()
    if report.interrupted:
        report.notes.append("interrupted: run the same command again to resume")
        status = EXIT_INTERRUPTED
    elif report.error is not None:
        status = EXIT_ERROR
    elif report.reasons:
        status = EXIT_SKIPPED
    print(report.text(), file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_json()))
    if report.error is not None:
        print(f"cogsync: {_one_line(report.error)}", file=sys.stderr)
    return status


# --- export and restore ---------------------------------------------------------------

def _summary(what: str, counts: Counter[str], args: argparse.Namespace, to_stdout: bool) -> None:
    text = f"cogsync: {what}: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing")
    print(text, file=sys.stderr)
    if args.json:
        print(json.dumps({"counts": dict(counts), "file": args.file}),
              file=sys.stdout if to_stdout else sys.stderr)


@_guarded
def cmd_export(args: argparse.Namespace) -> int:
    from cogsync.transfer.export_format import open_output
    from cogsync.transfer.exporter import export, master_key_id

    store, master = _open(args, create=False)
    try:
        with open_output(args.file, args.gzip) as stream:
            counts = export(store, stream, master_key_id(master), args.pool)
    finally:
        store.close()
    _summary(f"exported to {args.file}", counts, args, to_stdout=args.file != "-")
    return 0


@_guarded
def cmd_restore(args: argparse.Namespace) -> int:
    from cogsync.transfer.export_format import open_input
    from cogsync.transfer.exporter import master_key_id
    from cogsync.transfer.restorer import restore

    if args.file != "-" and not os.path.exists(args.file):
        raise TransferError(f"cannot read {args.file}: no such file")
    store, master = _open(args, create=True)
    try:
        with open_input(args.file) as lines:
            counts = restore(store, lines, args.file, master_key_id(master),
                             pool_id=args.pool, without_keys=args.without_keys)
        store.checkpoint()
    finally:
        store.close()
    _summary(f"restored from {args.file}", counts, args, to_stdout=True)
    return 0


def register(subparsers: Any) -> None:
    """Adds ``import``, ``export`` and ``restore`` to the ``cogsync`` command."""
    imp = subparsers.add_parser(
        "import", help="import an identity pool from Amazon Cognito Sync or another cogsync",
        description="Reads a pool through the public Cognito Identity and Cognito Sync APIs "
        "and writes it into this database; resumable, idempotent, see docs/migration.md.")
    imp.add_argument("--from", dest="source", required=True, metavar="ENDPOINT",
                     help="the source: an http(s):// URL serving both APIs, or 'aws'")
    imp.add_argument("--pool", required=True, metavar="POOL_ID", help="the source's pool id")
    imp.add_argument("--into", metavar="POOL_ID",
                     help="an existing pool to import into (default: a pool with the "
                     "source's id, created if missing)")
    imp.add_argument("--account", help="account of a pool the import creates (default: "
                     "the first account)")
    imp.add_argument("--profile", help="AWS profile of the source's credentials")
    imp.add_argument("--access-key-id", help="the source's access key id (default: the "
                     "AWS credential chain: AWS_ACCESS_KEY_ID, profiles, ...)")
    imp.add_argument("--secret-access-key", help="the source's secret access key")
    imp.add_argument("--session-token", help="the source's session token, if any")
    imp.add_argument("--source-region", help="the source's region (default: the region in "
                     "the pool id)")
    imp.add_argument("--concurrency", type=_positive, default=8,
                     help="identities imported at once (default 8)")
    imp.add_argument("--page-size", type=_page_size, default=1024,
                     help="records per ListRecords page (1-1024, default 1024)")
    imp.add_argument("--max-retries", type=_retries, default=10,
                     help="retries of a throttled or failed call (default 10)")
    imp.add_argument("--since", action="store_true",
                     help="catch up: once a pass is complete, walk again and copy what "
                     "changed since (by sync count)")
    imp.add_argument("--prune", action="store_true",
                     help="with --since: remove identities the source no longer has")
    imp.add_argument("--dry-run", action="store_true",
                     help="read everything, write nothing; report what would be written")
    imp.add_argument("--identities", metavar="FILE",
                     help="import these identity ids (one a line) instead of listing them")
    imp.add_argument("--state", metavar="FILE",
                     help="the checkpoint file (default: import-<pool>.state in --data-dir)")
    imp.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_option_flags(imp, (EVERY,))
    imp.set_defaults(func=cmd_import)

    exp = subparsers.add_parser(
        "export", help="write the database, or one pool, to a portable file",
        description="A consistent snapshot as JSON lines (gzip when the name ends .gz or "
        "with --gzip); safe while the server runs. See docs/migration.md.")
    exp.add_argument("file", nargs="?", default="-", metavar="FILE",
                     help="the file to write (default: standard output)")
    exp.add_argument("--pool", metavar="POOL_ID", help="export this pool only")
    exp.add_argument("--gzip", action="store_true", help="compress (also when FILE ends .gz)")
    exp.add_argument("--json", action="store_true", help="print the counts as JSON")
    add_option_flags(exp, (EVERY,))
    exp.set_defaults(func=cmd_export)

    res = subparsers.add_parser(
        "restore", help="load an export into a database",
        description="A whole database goes into an empty one; one pool (--pool, or a "
        "pool's export) into any database that does not hold it. All or nothing.")
    res.add_argument("file", metavar="FILE", help="the export to read ('-': standard input)")
    res.add_argument("--pool", metavar="POOL_ID", help="restore only this pool")
    res.add_argument("--without-keys", action="store_true",
                     help="leave out developer keys and signing keys (for a database with "
                     "another master key)")
    res.add_argument("--json", action="store_true", help="print the counts as JSON")
    add_option_flags(res, (EVERY,))
    res.set_defaults(func=cmd_restore)
