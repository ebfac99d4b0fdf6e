"""Sync session tokens and pagination tokens: sealed, so opaque and tamper-proof.

A token is AES-GCM over a small JSON payload, with its kind as associated data, so a
NextToken can never pass for a SyncSessionToken. Any replica holding the same master
key opens tokens sealed by any other.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import orjson

from cogsync.crypto import SealError, SecretBox, decode_token, encode_token
from cogsync.errors import InvalidParameter

SESSION_EXPIRED = "The SyncSessionToken has expired; call ListRecords again"


class SyncSession(NamedTuple):
    session_id: str
    identity_pool_id: str
    identity_id: str
    dataset_name: str
    expires_at: float


class TokenSealer:
    def __init__(self, box: SecretBox, session_ttl: float):
        self._box = box
        self.session_ttl = session_ttl

    def seal(self, kind: str, payload: dict[str, Any]) -> str:
        return encode_token(self._box.seal(orjson.dumps(payload), kind.encode()))

    def open(self, kind: str, token: str, what: str) -> dict[str, Any]:
        try:
            payload = orjson.loads(self._box.open(decode_token(token), kind.encode()))
        except (SealError, orjson.JSONDecodeError):
            raise InvalidParameter(f"The {what} is not valid") from None
        if not isinstance(payload, dict):
            raise InvalidParameter(f"The {what} is not valid")
        return payload

    # --- sync sessions ----------------------------------------------------------

    def new_session(self, pool_id: str, identity_id: str, dataset: str) -> tuple[SyncSession, str]:
        session = SyncSession(  # id, pool, identity, dataset, expiry
            os.urandom(16).hex(), pool_id, identity_id, dataset, time.time() + self.session_ttl
        )
        token = self.seal(
            "session",
            {
                "s": session.session_id,
                "p": pool_id,
                "i": identity_id,
                "d": dataset,
                "e": session.expires_at,
            },
        )
        return session, token

    def open_session(self, token: str, pool_id: str, identity_id: str, dataset: str) -> SyncSession:
        """The session a token names; InvalidParameter if forged, expired or misapplied."""
        p = self.open("session", token, "SyncSessionToken")
        try:
            session = SyncSession(str(p["s"]), str(p["p"]), str(p["i"]), str(p["d"]), float(p["e"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidParameter("The SyncSessionToken is not valid") from None
        if (session.identity_pool_id, session.identity_id, session.dataset_name) != (
            pool_id,
            identity_id,
            dataset,
        ):
            raise InvalidParameter(
                "The SyncSessionToken was issued for another identity or dataset"
            )
        if session.expires_at < time.time():
            raise InvalidParameter(SESSION_EXPIRED)
        return session

    # --- pagination -------------------------------------------------------------

    def next_token(self, scope: str, position: Any) -> str:
        """``scope`` names the listing (so a token is only good for the same query)."""
        return self.seal("next", {"s": scope, "p": position})

    def open_next_token(self, token: str, scope: str) -> Any:
        p = self.open("next", token, "NextToken")
        if p.get("s") != scope:
            raise InvalidParameter("The NextToken does not belong to this request")
        return p.get("p")
