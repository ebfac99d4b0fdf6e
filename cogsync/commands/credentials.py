"""``cogsync accounts ...`` and ``cogsync keys ...``: who may call the server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cogsync.commands.base import admin_parser, emit, open_database, when
from cogsync.errors import StartupError

if TYPE_CHECKING:
    from cogsync.store.account_queries import StoredKey


def _key_row(key: StoredKey) -> dict[str, Any]:
    return {
        "AccessKeyId": key.access_key_id,
        "AccountId": key.account_id,
        "Enabled": key.enabled,
        "CreatedAt": when(key.created_at),
        "LastUsedAt": when(key.last_used_at),
    }


def accounts_create(args: argparse.Namespace) -> int:
    from cogsync.accounts import create_account

    c = open_database(args)
    key = create_account(c.store, c.keyring)
    emit(args, {"AccountId": key.account_id, "AccessKeyId": key.access_key_id,
                "SecretAccessKey": key.secret_access_key})
    return 0


def accounts_list(args: argparse.Namespace) -> int:
    c = open_database(args)
    with c.store.read() as tx:
        accounts = tx.list_accounts()
    rows = [{"AccountId": a.account_id, "CreatedAt": when(a.created_at), "Keys": a.keys,
             "Pools": a.pools} for a in accounts]
    emit(args, rows, rows, empty="no accounts yet (cogsync accounts create makes one)")
    return 0


def keys_create(args: argparse.Namespace) -> int:
    from cogsync.accounts import create_key

    c = open_database(args)
    key = create_key(c.store, c.keyring, args.account)
    emit(args, {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key,
                "AccountId": key.account_id})
    return 0


def keys_list(args: argparse.Namespace) -> int:
    c = open_database(args)
    with c.store.read() as tx:
        keys = tx.list_access_keys(args.account)
    rows = [_key_row(k) for k in keys]
    emit(args, rows, rows, empty="no developer keys (cogsync keys create makes one)")
    return 0


def _stored(args: argparse.Namespace) -> tuple[Any, StoredKey]:
    c = open_database(args)
    with c.store.read() as tx:
        found = tx.get_access_key(args.access_key_id)
    if found is None:
        raise StartupError(
            f"there is no developer key {args.access_key_id} (see: cogsync keys list)"
        )
    return c, found


def keys_show(args: argparse.Namespace) -> int:
    c, stored = _stored(args)
    key = c.keyring.unseal(stored)
    if key is None:
        raise StartupError(
            f"the secret of {stored.access_key_id} was sealed under another master key: "
            "use the server's --data-dir or COGSYNC_SECRET_KEY"
        )
    emit(args, {**_key_row(stored), "SecretAccessKey": key.secret_access_key})
    return 0


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    c, stored = _stored(args)
    with c.store.write() as tx:
        tx.set_key_enabled(stored.access_key_id, enabled)
        changed = tx.get_access_key(stored.access_key_id)
    assert changed is not None
    emit(args, _key_row(changed))
    return 0


def keys_delete(args: argparse.Namespace) -> int:
    c, stored = _stored(args)
    with c.store.write() as tx:
        tx.delete_access_key(stored.access_key_id)
    emit(args, {"Deleted": stored.access_key_id})
    return 0


def register(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="accounts (each owns its keys and pools)")
    group = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    admin_parser(group, "create", "create an account with its first developer key").set_defaults(
        func=accounts_create
    )
    admin_parser(group, "list", "list the accounts").set_defaults(func=accounts_list)

    keys = sub.add_parser("keys", help="developer keys (access key id and secret)")
    group = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = admin_parser(group, "create", "create a developer key")
    create.add_argument("--account", help="account id (default: the first account)")
    create.set_defaults(func=keys_create)
    listing = admin_parser(group, "list", "list the developer keys (secrets are not shown)")
    listing.add_argument("--account", help="only this account's keys")
    listing.set_defaults(func=keys_list)
    actions = (
        ("show", "show a key with its secret (needs the server's master key)", keys_show),
        ("disable", "refuse requests signed with a key (within 30 s on a running server)",
         lambda a: _set_enabled(a, False)),
        ("enable", "accept a disabled key again", lambda a: _set_enabled(a, True)),
        ("delete", "delete a key for good", keys_delete),
    )
    for name, help_text, func in actions:
        parser = admin_parser(group, name, help_text)
        parser.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
        parser.set_defaults(func=func)
