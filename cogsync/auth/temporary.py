"""Temporary identity credentials, verifiable on any replica without a database read.

``GetCredentialsForIdentity`` (and STS ``AssumeRoleWithWebIdentity``) hand out an access
key id, a secret key and a session token. The session token is the sealed claim (access
key id, account, pool, identity, expiry, and the IAM role and session name when the pool
has roles); the secret key is an HMAC of the access key id under a key derived from the
master key. A request signed with them carries the token in ``X-Amz-Security-Token``;
the server opens it, re-derives the secret and checks the signature as usual.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass

import orjson

from cogsync.auth.caller import Caller
from cogsync.crypto import MasterKey, SealError, b64encode, decode_token, encode_token
from cogsync.errors import ExpiredToken, UnrecognizedClient

_PURPOSE = b"temporary-credentials"
_ALPHABET = string.ascii_uppercase + "234567"
# The session name of the credentials GetCredentialsForIdentity hands out, as in AWS.
ROLE_SESSION_NAME = "CognitoIdentityCredentials"


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    access_key_id: str
    secret_key: str
    session_token: str
    expiration: float


@dataclass(frozen=True, slots=True)
class IdentityClaim:
    access_key_id: str
    account_id: str
    identity_pool_id: str
    identity_id: str
    expiration: float
    role_arn: str | None = None
    session_name: str | None = None

    def caller(self) -> Caller:
        """Who requests signed with these credentials act as."""
        return Caller(
            self.account_id,
            self.identity_pool_id,
            self.identity_id,
            self.role_arn,
            self.session_name,
        )


class CredentialIssuer:
    def __init__(self, master: MasterKey, lifetime_seconds: float = 3600.0):
        self._box = master.box("temporary-credentials")
        self._secret_key = master.derive("temporary-secrets")
        self.lifetime = lifetime_seconds

    def _secret_for(self, access_key_id: str) -> str:
        digest = hmac.digest(self._secret_key, access_key_id.encode(), hashlib.sha256)
        return "s" + b64encode(digest)[:39]  # a letter first, like AWS's secrets

    def issue(
        self,
        account_id: str,
        pool_id: str,
        identity_id: str,
        *,
        role_arn: str | None = None,
        session_name: str | None = None,
        lifetime: float | None = None,
    ) -> TemporaryCredentials:
        """Credentials acting as the identity; ``lifetime`` defaults to the configured one."""
        access_key_id = "ASIA" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
        expiration = float(int(time.time() + (self.lifetime if lifetime is None else lifetime)))
        claim: dict[str, str | float] = {
            "k": access_key_id,
            "a": account_id,
            "p": pool_id,
            "i": identity_id,
            "e": expiration,
        }
        if role_arn is not None:
            claim["r"] = role_arn
            claim["n"] = session_name or ROLE_SESSION_NAME
        token = encode_token(self._box.seal(orjson.dumps(claim), _PURPOSE))
        return TemporaryCredentials(
            access_key_id, self._secret_for(access_key_id), token, expiration
        )

    def open(
        self, access_key_id: str, session_token: str, now: float | None = None
    ) -> tuple[IdentityClaim, str]:
        """The identity a session token names and the secret to check the signature with."""
        invalid = UnrecognizedClient("The security token included in the request is invalid.")
        try:
            raw = orjson.loads(self._box.open(decode_token(session_token), _PURPOSE))
            claim = IdentityClaim(
                str(raw["k"]),
                str(raw["a"]),
                str(raw["p"]),
                str(raw["i"]),
                float(raw["e"]),
                raw.get("r"),
                raw.get("n"),
            )
        except (SealError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise invalid from None
        if claim.access_key_id != access_key_id:
            raise invalid
        if claim.expiration < (time.time() if now is None else now):
            raise ExpiredToken("The security token included in the request is expired")
        return claim, self._secret_for(access_key_id)
