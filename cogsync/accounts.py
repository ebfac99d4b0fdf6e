"""Accounts, developer keys and identity pools as the operator creates them."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

from cogsync.auth.credentials import DeveloperKey, KeyRing
from cogsync.errors import StartupError
from cogsync.store.database import Store

DEFAULT_POOL_NAME = "default"


@dataclass(frozen=True)
class Bootstrap:
    """The first developer key and pool of a database, to show the newcomer."""

    key: DeveloperKey
    identity_pool_id: str | None
    new: bool  # made by this start (else: made earlier, and the key was never used)


@dataclass(frozen=True)
class PoolOptions:
    """What ``cogsync pools create`` (and the first start) set on a new pool."""

    name: str = DEFAULT_POOL_NAME
    allow_unauthenticated: bool = False
    developer_provider_name: str | None = None
    pool_id: str | None = None  # default: a new random id in the region


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def new_pool_id(region: str) -> str:
    return f"{region}:{uuid.uuid4()}"


class UnknownAccount(StartupError):
    """An admin command named an account that does not exist."""


def _check_account(store: Store, account_id: str) -> None:
    with store.read() as tx:
        if not tx.account_exists(account_id):
            raise UnknownAccount(f"there is no account {account_id} (see: cogsync accounts list)")


def default_account(store: Store) -> str | None:
    with store.read() as tx:
        return tx.first_account()


def create_account(
    store: Store,
    keyring: KeyRing,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> DeveloperKey:
    now = time.time()
    with store.write() as tx:
        account_id = new_account_id()
        tx.create_account(account_id, now)
        return keyring.create(tx, account_id, now, access_key_id, secret_access_key)


def create_key(store: Store, keyring: KeyRing, account_id: str | None = None) -> DeveloperKey:
    """A new key for ``account_id`` (default: the first account; created if none)."""
    if account_id is not None:
        _check_account(store, account_id)
    account_id = account_id or default_account(store)
    if account_id is None:
        return create_account(store, keyring)
    with store.write() as tx:
        return keyring.create(tx, account_id, time.time())


def create_pool(
    store: Store,
    keyring: KeyRing,
    region: str,
    options: PoolOptions,
    account_id: str | None = None,
) -> str:
    if account_id is not None:
        _check_account(store, account_id)
    account_id = account_id or default_account(store)
    if account_id is None:
        account_id = create_account(store, keyring).account_id
    pool_id = options.pool_id or new_pool_id(region)
    with store.write() as tx:
        tx.create_pool(pool_id, account_id, options.name, time.time())
        tx.set_pool_identity(
            pool_id,
            name=options.name,
            allow_unauthenticated=options.allow_unauthenticated,
            allow_classic_flow=False,
            developer_provider_name=options.developer_provider_name,
            attributes={},
        )
    return pool_id


def bootstrap(
    store: Store,
    keyring: KeyRing,
    region: str,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    pool_id: str | None = None,
) -> Bootstrap | None:
    """On an empty database: an account, a developer key and a pool that allows
    unauthenticated identities (fixed ids and secret if the operator gave them). On a
    database whose first key was never used: that key and pool again. Else None."""
    if default_account(store) is None:
        key = create_account(store, keyring, access_key_id, secret_access_key)
        options = PoolOptions(allow_unauthenticated=True, pool_id=pool_id)
        made = create_pool(store, keyring, region, options, key.account_id)
        return Bootstrap(key, made, new=True)
    return unused_first_key(store, keyring)


def unused_first_key(store: Store, keyring: KeyRing) -> Bootstrap | None:
    """The database's first developer key and its account's first pool, while no request
    has verified with any key of that account."""
    with store.read() as tx:
        account_id = tx.first_account()
        if account_id is None:
            return None
        stored = tx.list_access_keys(account_id)
        pools = tx.list_pools(account_id, None, 1)
    if not stored or any(k.last_used_at is not None for k in stored) or not stored[0].enabled:
        return None
    key = keyring.unseal(stored[0])
    if key is None:
        return None
    return Bootstrap(key, pools[0].identity_pool_id if pools else None, new=False)
