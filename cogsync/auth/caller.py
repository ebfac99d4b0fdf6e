"""Who is calling: the product of authentication, the input of authorization."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """A developer of an account, or one identity of one pool (with the IAM role its
    credentials were issued for, if the pool has roles)."""

    account_id: str
    identity_pool_id: str | None = None
    identity_id: str | None = None
    role_arn: str | None = None
    session_name: str | None = None

    @property
    def is_developer(self) -> bool:
        return self.identity_id is None

    @property
    def principal(self) -> str:
        """Written as LastModifiedBy when the request names no device."""
        return self.identity_id or self.account_id
