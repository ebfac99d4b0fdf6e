"""``cogsync identities ...`` and ``cogsync datasets ...``: an operator's look at a pool's
identities and their data, a dataset's records, a user's erasure and export.

They act as a developer of the pool's account, through the sync service (an erasure
deletes each dataset as DeleteDataset does, so clients are told), on the database the
running server uses: its clients see the change on their next call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cogsync.commands.base import admin_parser, emit, open_database, when
from cogsync.errors import ServiceError, StartupError

T = TypeVar("T")


def _admin(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(components, SyncAdmin, the caller that owns ``--pool``)."""
    from cogsync.sync.admin import SyncAdmin, pool_owner

    c = open_database(args)
    return c, SyncAdmin(c.service), _service(pool_owner, c.service, args.pool)


def _service(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The service's answer; its error (not found, say) as a one-line command error."""
    try:
        return call(*args, **kwargs)
    except ServiceError as error:
        raise StartupError(error.message) from None


def _dataset_row(d: Any) -> dict[str, Any]:
    return {
        "DatasetName": d.name,
        "SyncCount": d.sync_count,
        "NumRecords": d.num_records,
        "DataStorage": d.data_storage,
        "LastModifiedBy": d.last_modified_by,
        "LastModifiedDate": when(d.last_modified_date),
        "CreationDate": when(d.creation_date),
    }


def identities_list(args: argparse.Namespace) -> int:
    _, admin, caller = _admin(args)
    found = _service(admin.identities, caller, args.pool, args.search, None, args.limit)
    rows = [
        {"IdentityId": i.identity_id, "Datasets": i.datasets, "DataStorage": i.data_storage}
        for i in found
    ]
    emit(args, rows, rows, empty="no identities" + (" match" if args.search else ""))
    return 0


def identities_show(args: argparse.Namespace) -> int:
    _, admin, caller = _admin(args)
    detail = _service(admin.identity, caller, args.pool, args.identity)
    identity = detail.identity
    value = {
        "IdentityPoolId": detail.identity_pool_id,
        "IdentityId": detail.identity_id,
        "CreationDate": when(identity.created_at) if identity else None,
        "LastModifiedDate": when(identity.last_modified_at) if identity else None,
        "Logins": [{"Provider": p, "Subject": s} for p, s in identity.logins] if identity else [],
        "Devices": detail.devices,
        "Datasets": [_dataset_row(d) for d in detail.datasets],
    }
    if args.json:
        emit(args, value)
        return 0
    emit(args, {k: v for k, v in value.items() if k not in ("Logins", "Datasets")})
    for login in value["Logins"]:
        print(f"Login: {login['Provider']} {login['Subject']}")
    print()
    emit(args, value["Datasets"], value["Datasets"], empty="no datasets")
    return 0


def identities_erase(args: argparse.Namespace) -> int:
    _, admin, caller = _admin(args)
    erased = _service(admin.erase, caller, args.pool, args.identity, forget=args.forget)
    value = {
        "IdentityPoolId": erased.identity_pool_id,
        "IdentityId": erased.identity_id,
        "DatasetsDeleted": erased.datasets_deleted,
        "DevicesForgotten": erased.devices_forgotten,
        "IdentityForgotten": erased.identity_forgotten,
    }
    if args.json:
        emit(args, value)
    else:
        names = ", ".join(erased.datasets_deleted) or "none"
        print(f"erased {erased.identity_id}: datasets deleted: {names}; devices forgotten: "
              f"{erased.devices_forgotten}"
              + ("; the identity and its logins forgotten" if erased.identity_forgotten else ""))
    return 0


def identities_export(args: argparse.Namespace) -> int:
    from cogsync.transfer.identity_export import export_identity

    c, _, caller = _admin(args)
    document = _service(export_identity, c.service, caller, args.pool, args.identity)
    text = json.dumps(document, indent=None if args.json else 2) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise StartupError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


def datasets_show(args: argparse.Namespace) -> int:
    _, admin, caller = _admin(args)
    dataset, records = _service(
        admin.records, caller, args.pool, args.identity, args.dataset, args.search
    )
    if not args.removed:
        records = [r for r in records if r.value is not None]
    rows = [
        {
            "Key": r.key,
            "Value": r.value,
            "SyncCount": r.sync_count,
            "LastModifiedBy": r.last_modified_by,
            "LastModifiedDate": when(r.last_modified_date),
        }
        for r in records
    ]
    if args.json:
        emit(args, {**_dataset_row(dataset), "Records": rows})
        return 0
    emit(args, _dataset_row(dataset))
    print()
    emit(args, rows, rows, empty="no records")
    return 0


def _identity_flags(parser: argparse.ArgumentParser, identity: bool = True) -> None:
    parser.add_argument("--pool", required=True, metavar="POOL_ID", help="the identity pool")
    if identity:
        parser.add_argument("--identity", required=True, metavar="IDENTITY_ID",
                            help="the identity")


def register(sub: Any) -> None:
    identities = sub.add_parser("identities", help="a pool's identities and their data")
    group = identities.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = admin_parser(group, "list", "the pool's identities, with their datasets")
    _identity_flags(listing, identity=False)
    listing.add_argument("--search", metavar="TEXT",
                         help="only identities whose id, login provider or subject holds TEXT")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(func=identities_list)

    show = admin_parser(group, "show", "one identity: its logins, devices and datasets")
    _identity_flags(show)
    show.set_defaults(func=identities_show)

    erase = admin_parser(
        group, "erase",
        "erase an identity's data (right to erasure): every dataset deleted as "
        "DeleteDataset does (clients are told to wipe their copy), devices and "
        "subscriptions removed",
    )
    _identity_flags(erase)
    erase.add_argument("--forget", action="store_true",
                       help="also delete the identity and its logins (as DeleteIdentities)")
    erase.set_defaults(func=identities_erase)

    export = admin_parser(group, "export",
                          "one identity's data as one JSON document (indented unless --json)")
    _identity_flags(export)
    export.add_argument("--output", metavar="FILE", help="write it to FILE, not standard output")
    export.set_defaults(func=identities_export)

    datasets = sub.add_parser("datasets", help="datasets and their records")
    dgroup = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    show_dataset = admin_parser(dgroup, "show", "a dataset and its records")
    _identity_flags(show_dataset)
    show_dataset.add_argument("--dataset", required=True, metavar="NAME", help="the dataset")
    show_dataset.add_argument("--search", metavar="TEXT",
                              help="only records whose key or value holds TEXT")
    show_dataset.add_argument("--removed", action="store_true",
                              help="also removed records (tombstones, with no value)")
    show_dataset.set_defaults(func=datasets_show)
