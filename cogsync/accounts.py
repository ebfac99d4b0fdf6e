"""Accounts, developer keys and identity pools as the operator creates them."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

from cogsync.auth.credentials import DeveloperKey, KeyRing
from cogsync.store.database import Store


@dataclass(frozen=True)
class Bootstrap:
    """What a first start created, to print for the newcomer."""

    key: DeveloperKey
    identity_pool_id: str


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def new_pool_id(region: str) -> str:
    return f"{region}:{uuid.uuid4()}"


class UnknownAccount(ValueError):
    pass


def _check_account(store: Store, account_id: str) -> None:
    with store.read() as tx:
        if not tx.account_exists(account_id):
            raise UnknownAccount(f"no account {account_id}")


def default_account(store: Store) -> str | None:
    with store.read() as tx:
        return tx.first_account()


def create_account(store: Store, keyring: KeyRing) -> DeveloperKey:
    now = time.time()
    with store.write() as tx:
        account_id = new_account_id()
        tx.create_account(account_id, now)
        return keyring.create(tx, account_id, now)


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
    store: Store, keyring: KeyRing, name: str, region: str, account_id: str | None = None
) -> str:
    if account_id is not None:
        _check_account(store, account_id)
    account_id = account_id or default_account(store)
    if account_id is None:
        account_id = create_account(store, keyring).account_id
    pool_id = new_pool_id(region)
    with store.write() as tx:
        tx.create_pool(pool_id, account_id, name, time.time())
    return pool_id


def bootstrap(store: Store, keyring: KeyRing, region: str) -> Bootstrap | None:
    """On an empty database: an account, a developer key and a pool. Else None."""
    if default_account(store) is not None:
        return None
    key = create_account(store, keyring)
    pool_id = create_pool(store, keyring, "default", region, key.account_id)
    return Bootstrap(key, pool_id)
