"""Accounts and developer keys: what the operator makes and the signature check reads."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update

from cogsync.store.prepared import Prepared, Queries
from cogsync.store.schema import access_keys, accounts, identity_pools


class StoredKey(NamedTuple):
    """A developer key as stored: its secret stays sealed."""

    access_key_id: str
    account_id: str
    secret_ciphertext: bytes
    enabled: bool
    created_at: float
    last_used_at: float | None


class AccountSummary(NamedTuple):
    account_id: str
    created_at: float
    keys: int
    pools: int


KEY_COLUMNS = (
    access_keys.c.access_key_id,
    access_keys.c.account_id,
    access_keys.c.secret_ciphertext,
    access_keys.c.enabled,
    access_keys.c.created_at,
    access_keys.c.last_used_at,
)

INSERT_ACCOUNT = Prepared(
    lambda d: insert(accounts).values(
        account_id=bindparam("account_id"), created_at=bindparam("now")
    )
)
ACCOUNT_EXISTS = Prepared(
    lambda d: select(accounts.c.account_id).where(accounts.c.account_id == bindparam("account_id"))
)
FIRST_ACCOUNT = Prepared(
    lambda d: select(accounts.c.account_id).order_by(accounts.c.created_at).limit(1)
)
INSERT_KEY = Prepared(
    lambda d: insert(access_keys).values(
        access_key_id=bindparam("access_key_id"),
        account_id=bindparam("account_id"),
        secret_ciphertext=bindparam("secret_ciphertext"),
        enabled=bindparam("enabled"),
        created_at=bindparam("created_at"),
    )
)
GET_KEY = Prepared(
    lambda d: select(*KEY_COLUMNS).where(access_keys.c.access_key_id == bindparam("key"))
)
MARK_USED = Prepared(
    lambda d: update(access_keys)
    .where(access_keys.c.access_key_id == bindparam("key"), access_keys.c.last_used_at.is_(None))
    .values(last_used_at=bindparam("now"))
)


def _key(row: tuple[object, ...]) -> StoredKey:
    key_id, account_id, sealed, enabled, created_at, last_used_at = row
    return StoredKey(
        str(key_id), str(account_id), bytes(sealed), bool(enabled), created_at, last_used_at
    )


class AccountQueries(Queries):
    """Accounts and their developer keys."""

    def create_account(self, account_id: str, now: float) -> None:
        INSERT_ACCOUNT.run(self, account_id=account_id, now=now)

    def account_exists(self, account_id: str) -> bool:
        return ACCOUNT_EXISTS.first(self, account_id=account_id) is not None

    def first_account(self) -> str | None:
        return FIRST_ACCOUNT.scalar(self)

    def list_accounts(self) -> list[AccountSummary]:
        keys = (
            select(func.count())
            .where(access_keys.c.account_id == accounts.c.account_id)
            .scalar_subquery()
        )
        pools = (
            select(func.count())
            .where(identity_pools.c.account_id == accounts.c.account_id)
            .scalar_subquery()
        )
        rows = self.execute(
            select(accounts.c.account_id, accounts.c.created_at, keys, pools).order_by(
                accounts.c.created_at, accounts.c.account_id
            )
        )
        return [AccountSummary(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def create_access_key(
        self, access_key_id: str, account_id: str, secret_ciphertext: bytes, now: float
    ) -> None:
        INSERT_KEY.run(
            self,
            access_key_id=access_key_id,
            account_id=account_id,
            secret_ciphertext=secret_ciphertext,
            enabled=True,
            created_at=now,
        )

    def get_access_key(self, access_key_id: str) -> StoredKey | None:
        row = GET_KEY.first(self, key=access_key_id)
        return None if row is None else _key(row)

    def list_access_keys(self, account_id: str | None = None) -> list[StoredKey]:
        query = select(*KEY_COLUMNS).order_by(
            access_keys.c.created_at, access_keys.c.access_key_id
        )
        if account_id is not None:
            query = query.where(access_keys.c.account_id == account_id)
        return [_key(tuple(row)) for row in self.execute(query)]

    def set_key_enabled(self, access_key_id: str, enabled: bool) -> bool:
        """False if there is no such key."""
        rows = self.execute(
            update(access_keys)
            .where(access_keys.c.access_key_id == access_key_id)
            .values(enabled=enabled)
        )
        return rows.rowcount > 0

    def delete_access_key(self, access_key_id: str) -> bool:
        rows = self.execute(delete(access_keys).where(access_keys.c.access_key_id == access_key_id))
        return rows.rowcount > 0

    def mark_key_used(self, access_key_id: str, now: float) -> None:
        """Records the first use of a key (later uses change nothing)."""
        MARK_USED.run(self, key=access_key_id, now=now)
