"""``cogsync pools ...``: identity pools, checked as the CreateIdentityPool API checks them."""

from __future__ import annotations

import argparse
from typing import Any

from cogsync.commands.base import admin_parser, emit, open_database, when
from cogsync.errors import ServiceError, StartupError


def pools_create(args: argparse.Namespace) -> int:
    from cogsync.accounts import PoolOptions, create_pool
    from cogsync.protocol.model import identity_model
    from cogsync.protocol.validation import validate

    wanted: dict[str, Any] = {
        "IdentityPoolName": args.name,
        "AllowUnauthenticatedIdentities": args.allow_unauthenticated,
    }
    if args.developer_provider is not None:
        wanted["DeveloperProviderName"] = args.developer_provider
    try:
        validate(identity_model().operations["CreateIdentityPool"].input, wanted)
    except ServiceError as error:
        raise StartupError(error.message) from None
    c = open_database(args)
    options = PoolOptions(args.name, args.allow_unauthenticated, args.developer_provider)
    pool_id = create_pool(c.store, c.keyring, c.settings.region, options, args.account)
    with c.store.read() as tx:
        pool = tx.get_pool(pool_id)
    assert pool is not None
    if args.json:
        emit(args, _pool_row(pool))
    else:
        print(pool_id)
    return 0


def _pool_row(pool: Any) -> dict[str, Any]:
    return {
        "IdentityPoolId": pool.identity_pool_id,
        "IdentityPoolName": pool.name,
        "AccountId": pool.account_id,
        "AllowUnauthenticatedIdentities": pool.allow_unauthenticated,
        "DeveloperProviderName": pool.developer_provider_name,
        "CreatedAt": when(pool.created_at),
    }


def pools_list(args: argparse.Namespace) -> int:
    c = open_database(args)
    with c.store.read() as tx:
        accounts = [args.account] if args.account else [a.account_id for a in tx.list_accounts()]
        pools = [p for account in accounts for p in tx.list_pools(account, None, 1_000_000)]
    rows = [_pool_row(p) for p in pools]
    emit(args, rows, rows, empty="no identity pools (cogsync pools create --name N makes one)")
    return 0


def register(sub: Any) -> None:
    pools = sub.add_parser("pools", help="identity pools")
    group = pools.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = admin_parser(group, "create", "create an identity pool")
    create.add_argument("--name", required=True, help="the pool's name (IdentityPoolName)")
    create.add_argument("--account", help="account id (default: the first account)")
    create.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="let GetId hand out identities without logins (AllowUnauthenticatedIdentities)",
    )
    create.add_argument(
        "--developer-provider",
        metavar="NAME",
        help="the pool's developer provider name, for developer-authenticated identities",
    )
    create.set_defaults(func=pools_create)
    listing = admin_parser(group, "list", "list identity pools")
    listing.add_argument("--account", help="only this account's pools")
    listing.set_defaults(func=pools_list)
