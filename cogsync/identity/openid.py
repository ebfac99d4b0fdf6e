"""OpenID Connect tokens: the ones cogsync issues, and the ones it accepts as logins.

cogsync signs its own tokens (GetOpenIdToken, GetOpenIdTokenForDeveloperIdentity) with an
RSA key kept in the database, sealed under the master key, so every replica signs and
verifies with the same key; the public half is served as a JWKS. Tokens of external
providers are verified against the issuer and JWKS the operator configures.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from cogsync.crypto import SealError, SecretBox
from cogsync.errors import NotAuthorized, StartupError
from cogsync.store.database import Store

COGNITO_PROVIDER = "cognito-identity.amazonaws.com"
DEFAULT_ISSUER = "https://cognito-identity.amazonaws.com"
_KEY_NAME = "openid-signing-key"
_PURPOSE = b"openid-signing-key"


class TokenExpired(NotAuthorized):
    """A well-signed token past its ``exp`` (STS tells this apart from a bad token)."""


class TokenSigner:
    """Signs and verifies cogsync's own OpenID tokens (RS256)."""

    def __init__(self, store: Store, box: SecretBox, issuer: str = DEFAULT_ISSUER):
        self.issuer = issuer
        pem = self._load_or_create(store, box)
        self._private = serialization.load_pem_private_key(pem, password=None)
        public = self._private.public_key()
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
        self.kid = uuid.uuid5(uuid.NAMESPACE_OID, jwk["n"]).hex
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        self.jwks = {"keys": [jwk]}
        self._public = public

    @staticmethod
    def _load_or_create(store: Store, box: SecretBox) -> bytes:
        with store.write() as tx:
            sealed = tx.get_server_key(_KEY_NAME)
            if sealed is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                tx.put_server_key(_KEY_NAME, box.seal(pem, _PURPOSE), time.time())
                return pem
        try:
            return box.open(sealed, _PURPOSE)
        except SealError:
            raise StartupError(
                "this database was sealed under another master key: start with the "
                "original key (COGSYNC_SECRET_KEY, or the data folder's master.key)"
            ) from None

    def issue(self, pool_id: str, identity_id: str, amr: list[str], duration: int) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": identity_id,
            "aud": pool_id,
            "amr": amr,
            "iat": now,
            "exp": now + duration,
            "https://aws.amazon.com/tags": {},
        }
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired(f"Invalid login token. Token expired: {exc}") from None
        except jwt.PyJWTError as exc:
            raise NotAuthorized(f"Invalid login token: {exc}") from None


@dataclass
class OpenIdProvider:
    """An external identity provider the operator trusts."""

    name: str  # the key clients use in Logins, e.g. "accounts.example.com"
    issuer: str
    jwks_uri: str | None = None
    jwks_file: str | None = None
    audiences: list[str] = field(default_factory=list)
    _jwks: dict[str, Any] | None = None
    _fetched: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            stale = time.monotonic() - self._fetched > 300
            if self._jwks is None or refresh or stale:
                if self.jwks_file:
                    self._jwks = json.loads(Path(self.jwks_file).read_text())
                elif self.jwks_uri:
                    with urllib.request.urlopen(self.jwks_uri, timeout=5) as response:
                        self._jwks = json.loads(response.read())
                else:
                    raise NotAuthorized(f"No keys configured for provider {self.name}")
                self._fetched = time.monotonic()
            return self._jwks

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthorized(f"Invalid login token for {self.name}: {exc}") from None
        key = self._key(header.get("kid"))
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384"],
                issuer=self.issuer,
                audience=self.audiences or None,
                options={"verify_aud": bool(self.audiences), "require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise NotAuthorized(f"Invalid login token for {self.name}: {exc}") from None

    def _key(self, kid: str | None) -> Any:
        for refresh in (False, True):  # a new kid: the provider may have rotated keys
            try:
                keys = self.keys(refresh)
            except (OSError, ValueError) as exc:
                raise NotAuthorized(f"Cannot read the keys of {self.name}: {exc}") from None
            for jwk in keys.get("keys", []):
                if kid is None or jwk.get("kid") == kid:
                    return jwt.PyJWK(jwk).key
        raise NotAuthorized(f"No key '{kid}' among the keys of {self.name}")


def load_providers(text: str | None) -> dict[str, OpenIdProvider]:
    """Parses ``COGSYNC_OIDC_PROVIDERS``: a JSON list, or the path of a JSON file."""
    if not text:
        return {}
    raw = json.loads(Path(text).read_text() if not text.lstrip().startswith("[") else text)
    providers: dict[str, OpenIdProvider] = {}
    for entry in raw:
        issuer = entry["issuer"].rstrip("/")
        name = entry.get("name") or issuer.removeprefix("https://").removeprefix("http://")
        providers[name] = OpenIdProvider(
            name=name,
            issuer=issuer,
            jwks_uri=entry.get("jwks_uri"),
            jwks_file=entry.get("jwks_file"),
            audiences=list(entry.get("audiences", [])),
        )
    return providers
