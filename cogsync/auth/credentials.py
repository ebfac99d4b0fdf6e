"""Developer access keys: creation, sealed storage, and a short-lived lookup cache."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, replace

from cogsync.crypto import SealError, SecretBox
from cogsync.store.account_queries import StoredKey
from cogsync.store.database import Store, Tx

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_PURPOSE_PREFIX = b"access-key:"


@dataclass(frozen=True, slots=True)
class DeveloperKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    used: bool = False  # a request has verified with it


def new_access_key_id() -> str:
    return "AKCS" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


class KeyRing:
    """Finds the secret and account of an access key id.

    Secrets are stored AES-GCM sealed under the master key, bound to their key id, so
    a copy of the database alone does not reveal them. Lookups are cached briefly
    (``ttl`` seconds) so that a signed request usually costs no database round trip.
    """

    def __init__(self, store: Store, box: SecretBox, ttl: float = 30.0):
        self.store = store
        self.box = box
        self.ttl = ttl
        self._cache: dict[str, tuple[float, DeveloperKey | None]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        tx: Tx,
        account_id: str,
        now: float,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> DeveloperKey:
        """A new key; random unless the operator fixed its id and secret."""
        key = DeveloperKey(
            access_key_id or new_access_key_id(), secret_access_key or new_secret(), account_id
        )
        tx.create_access_key(key.access_key_id, account_id, self.seal(key), now)
        return key

    def seal(self, key: DeveloperKey) -> bytes:
        return self.box.seal(
            key.secret_access_key.encode(), _PURPOSE_PREFIX + key.access_key_id.encode()
        )

    def unseal(self, stored: StoredKey) -> DeveloperKey | None:
        """The key with its secret; None if it was sealed under another master key."""
        try:
            secret = self.box.open(
                stored.secret_ciphertext, _PURPOSE_PREFIX + stored.access_key_id.encode()
            )
        except SealError:
            return None
        return DeveloperKey(
            stored.access_key_id, secret.decode(), stored.account_id,
            stored.last_used_at is not None,
        )

    def forget(self, access_key_id: str) -> None:
        """Drops what this process remembers of a key (it was just enabled or disabled)."""
        with self._lock:
            self._cache.pop(access_key_id, None)

    def mark_used(self, key: DeveloperKey) -> None:
        """Notes that a request verified with ``key`` (from then on a start no longer
        prints it)."""
        with self.store.write() as tx:
            tx.mark_key_used(key.access_key_id, time.time())
        with self._lock:
            entry = self._cache.get(key.access_key_id)
            if entry is not None and entry[1] is not None:
                self._cache[key.access_key_id] = (entry[0], replace(entry[1], used=True))

    def cached(self, access_key_id: str) -> tuple[bool, DeveloperKey | None]:
        """(hit, key): a hit may be a remembered miss."""
        entry = self._cache.get(access_key_id)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def lookup(self, access_key_id: str) -> DeveloperKey | None:
        hit, key = self.cached(access_key_id)
        if hit:
            return key
        with self.store.read() as tx:
            found = tx.get_access_key(access_key_id)
        # A disabled key, or one sealed under another master key, counts as unknown.
        key = self.unseal(found) if found is not None and found.enabled else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (time.monotonic() + self.ttl, key)
        return key
