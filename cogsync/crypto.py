"""The server's master key and the authenticated encryption built on it.

One 32-byte master key (a file in the data folder, or ``COGSYNC_SECRET_KEY``) yields
independent sub-keys: one seals developer secrets at rest, one seals the tokens handed
to clients. Replicas that share the master key accept each other's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class SealError(Exception):
    """A sealed value was forged, damaged, or sealed for another purpose."""


class SecretBox:
    """AES-256-GCM; ``purpose`` is bound as associated data."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, purpose)

    def open(self, sealed: bytes, purpose: bytes) -> bytes:
        if len(sealed) < _NONCE + 16:
            raise SealError("too short")
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], purpose)
        except InvalidTag:
            raise SealError("authentication failed") from None


class MasterKey:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._key = key

    def derive(self, label: str) -> bytes:
        return hmac.digest(self._key, b"cogsync/" + label.encode(), hashlib.sha256)

    def box(self, label: str) -> SecretBox:
        return SecretBox(self.derive(label))

    @staticmethod
    def decode(text: str) -> MasterKey:
        """Accepts the key as 64 hex digits or URL-safe base64 of 32 bytes."""
        text = text.strip()
        try:
            raw = (
                bytes.fromhex(text)
                if len(text) == 64
                else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            )
        except ValueError:
            raise ValueError("COGSYNC_SECRET_KEY is neither hex nor base64") from None
        return MasterKey(raw)

    @staticmethod
    def load_or_create(path: Path) -> MasterKey:
        """Reads the key file, creating it (mode 0600) on first start."""
        if path.exists():
            return MasterKey.decode(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
        return MasterKey(bytes.fromhex(text))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Tokens handed to clients start with a letter: one that started with "-" (URL-safe
# base64 has it) would read as an option to the AWS CLI ("--sync-session-token -x...").
TOKEN_PREFIX = "c"


def encode_token(data: bytes) -> str:
    return TOKEN_PREFIX + b64encode(data)


def decode_token(text: str) -> bytes:
    if not text.startswith(TOKEN_PREFIX):
        raise SealError("not a cogsync token")
    return b64decode(text[len(TOKEN_PREFIX) :])


def b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise SealError("not base64") from None
