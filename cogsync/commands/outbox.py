"""``cogsync outbox ...``: side effects (stream records, pushes) waiting or dead."""

from __future__ import annotations

import argparse
import time
from typing import Any

from cogsync.commands.base import admin_parser, emit, open_database, when


def outbox_list(args: argparse.Namespace) -> int:
    c = open_database(args)
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
            "CreatedAt": when(e.created_at),
            "Payload": e.payload,
        }
        for e in entries
    ]
    if args.json:
        emit(args, rows)
        return 0
    shown = [{k: v for k, v in row.items() if k != "Payload"} for row in rows]
    emit(args, rows, shown, empty=f"no {status} entries")
    return 0


def outbox_retry(args: argparse.Namespace) -> int:
    c = open_database(args)
    with c.store.write() as tx:
        count = tx.outbox_requeue_dead(time.time(), args.id)
    if args.json:
        emit(args, {"Requeued": count})
    else:
        print(f"requeued {count} dead entries")
    return 0


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="side effects waiting or dead")
    group = outbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = admin_parser(group, "list", "pending (or, with --dead, dead) entries")
    listing.add_argument("--dead", action="store_true", help="dead letters instead")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(func=outbox_list)
    retry = admin_parser(group, "retry", "deliver the dead entries (or those --id names) again")
    retry.add_argument("--id", type=int, action="append", metavar="ID",
                       help="only this dead entry (the Id outbox list --dead shows); repeatable")
    retry.set_defaults(func=outbox_retry)
