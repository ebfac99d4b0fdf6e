"""Identities for tests: what an app holds after signing in, and a login provider.

:class:`OidcProvider` plays an OpenID Connect provider (its key set is a file the server
reads, so nothing listens): it signs id tokens that cogsync verifies as it would a real
provider's. :class:`Identity` is an identity id with its temporary credentials.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cogsync.testing.server import CogsyncServer

DEVELOPER_PROVIDER = "login.cogsync.test"
OIDC_PROVIDER = "oidc.cogsync.test"
OIDC_CLIENT_ID = "cogsync-test-app"
COGNITO_LOGIN = "cognito-identity.amazonaws.com"
KINDS = ("unauthenticated", "developer", "oidc")


class OidcProvider:
    """A login provider for tests: an RSA key, its JWKS in a file, id tokens on demand."""

    def __init__(self, name: str = OIDC_PROVIDER, client_id: str = OIDC_CLIENT_ID,
                 folder: Path | None = None):
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.name = name
        self.issuer = f"https://{name}"
        self.client_id = client_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": "cogsync-test", "alg": "RS256", "use": "sig"})
        self._folder = folder or Path(tempfile.mkdtemp(prefix="cogsync-oidc-"))
        self.jwks_file = self._folder / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}))

    def config(self) -> dict[str, Any]:
        """This provider as an entry of ``COGSYNC_OIDC_PROVIDERS``."""
        return {"name": self.name, "issuer": self.issuer, "jwks_file": str(self.jwks_file),
                "audiences": [self.client_id]}

    def arn(self, account_id: str) -> str:
        """What a pool lists in ``OpenIdConnectProviderARNs`` to accept this provider."""
        return f"arn:aws:iam::{account_id}:oidc-provider/{self.name}"

    def token(self, subject: str, *, audience: str | None = None, expires_in: int = 300,
              **claims: Any) -> str:
        """A signed id token for user ``subject``; ``expires_in`` below 0 makes one that
        has expired."""
        import jwt

        now = int(time.time())
        payload = {"iss": self.issuer, "sub": subject, "aud": audience or self.client_id,
                   "iat": now, "exp": now + expires_in, **claims}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": "cogsync-test"})

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self._folder, ignore_errors=True)


@dataclass
class Identity:
    """An identity of a pool and its temporary credentials (from
    ``GetCredentialsForIdentity``): ``AccessKeyId``, ``SecretKey``, ``SessionToken``,
    ``Expiration``."""

    server: CogsyncServer = field(repr=False)
    pool_id: str
    identity_id: str
    kind: str
    logins: dict[str, str]
    credentials: dict[str, Any]

    def sync_client(self, **config: Any) -> Any:
        """A Cognito Sync client signing as this identity."""
        return self.server.client(
            "cognito-sync",
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretKey"],
            aws_session_token=self.credentials["SessionToken"],
            **config,
        )

    def environment(self) -> dict[str, str]:
        """The variables that make the AWS SDKs call cogsync as this identity."""
        return {
            **self.server.environment(self.pool_id),
            "AWS_ACCESS_KEY_ID": self.credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["SecretKey"],
            "AWS_SESSION_TOKEN": self.credentials["SessionToken"],
            "COGSYNC_IDENTITY_ID": self.identity_id,
        }

    def refresh(self) -> dict[str, Any]:
        """New temporary credentials for this identity (after they expired, say)."""
        public = self.server.public_identity_client()
        self.credentials = public.get_credentials_for_identity(
            IdentityId=self.identity_id, Logins=self.logins)["Credentials"]
        return self.credentials
