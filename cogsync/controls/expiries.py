"""Expired sessions on request: sync session tokens and identity credentials issued
before a moment count as expired.

Both are sealed and carry their own expiry, so nothing on the server lists them. What
can be told from a token is when it was issued: a SyncSessionToken holds its expiry to
the microsecond (issued = expiry - session lifetime); temporary credentials hold theirs
cut to the second, so a moment ``T`` covers every credential whose expiry is at most
``T + lifetime``, which takes in every one issued before ``T`` and none issued a second
or more after it (the test controls answer the request that set ``T`` a second later).
"""

from __future__ import annotations

import math
import threading

EVERYONE = "*"


class Expiries:
    def __init__(self, session_ttl: float, credentials_lifetime: float):
        self._session_ttl = session_ttl
        self._credentials_lifetime = credentials_lifetime
        self._sessions: dict[str, float] = {}  # identity id (or EVERYONE) -> moment
        self._credentials: dict[str, float] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._sessions or self._credentials)

    def expire(self, moment: float, identity_id: str | None, credentials: bool) -> None:
        who = identity_id or EVERYONE
        with self._lock:
            self._sessions[who] = max(self._sessions.get(who, -math.inf), moment)
            if credentials:
                self._credentials[who] = max(self._credentials.get(who, -math.inf), moment)

    @staticmethod
    def _moment(marks: dict[str, float], identity_id: str) -> float:
        return max(marks.get(EVERYONE, -math.inf), marks.get(identity_id, -math.inf))

    def session_expired(self, identity_id: str, expires_at: float) -> bool:
        return expires_at - self._session_ttl <= self._moment(self._sessions, identity_id)

    def credentials_expired(self, identity_id: str, expiration: float) -> bool:
        moment = self._moment(self._credentials, identity_id)
        return expiration <= moment + self._credentials_lifetime
