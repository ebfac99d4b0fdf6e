"""STS for the basic (classic) Cognito flow: ``AssumeRoleWithWebIdentity`` with an OpenID
token cogsync issued, and ``GetCallerIdentity``.

The apps still on the classic flow call ``GetId``, then ``GetOpenIdToken``, then STS with
the pool's role ARN. cogsync plays STS's part for its own tokens: the pool's roles stand
in for the roles' trust policies (``aud`` is the pool, ``amr`` says authenticated or
unauthenticated), and the credentials it returns are the same temporary identity
credentials as ``GetCredentialsForIdentity``'s: they act as that identity only, expire
the same way, and every replica accepts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.auth.temporary import ROLE_SESSION_NAME, CredentialIssuer, TemporaryCredentials
from cogsync.errors import NotAuthorized, ServiceError
from cogsync.identity.openid import TokenExpired, TokenSigner
from cogsync.identity.roles import RoleArn, may_assume, parse_role_arn
from cogsync.store.database import Store

# Errors in STS's codes; statuses come from the sts model, except the two common errors.


class InvalidIdentityToken(ServiceError):
    code = "InvalidIdentityToken"


class ExpiredWebIdentityToken(ServiceError):
    code = "ExpiredTokenException"


class IdpRejectedClaim(ServiceError):
    code = "IDPRejectedClaim"


class MalformedPolicyDocument(ServiceError):
    code = "MalformedPolicyDocument"


class AccessDenied(ServiceError):
    code = "AccessDenied"
    status = 403


class ValidationError(ServiceError):
    code = "ValidationError"
    status = 400


NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
MAX_POLICY_ARNS = 10
# The role name GetCallerIdentity shows for credentials of a pool without roles.
NO_ROLE_NAME = "cogsync-identity-without-role"


@dataclass(frozen=True, slots=True)
class AssumedRole:
    credentials: TemporaryCredentials
    role: RoleArn
    session_name: str
    subject: str  # the identity id (the token's sub)
    audience: str  # the pool id (the token's aud)
    provider: str  # the token's issuer


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    user_id: str
    account: str
    arn: str


class WebIdentityService:
    def __init__(self, store: Store, signer: TokenSigner, credentials: CredentialIssuer):
        self.store = store
        self.signer = signer
        self.credentials = credentials

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            return self.signer.verify(token)
        except TokenExpired as exc:
            raise ExpiredWebIdentityToken(exc.message) from None
        except NotAuthorized:
            raise InvalidIdentityToken(
                "The web identity token that was passed could not be validated by cogsync. "
                "Get a new token with GetOpenIdToken and retry."
            ) from None

    @staticmethod
    def _check_policies(policy: str | None, policy_arns: list[dict[str, Any]] | None) -> None:
        """Session policies are checked for form, not enforced: the credentials act as
        their identity under cogsync's authorization matrix whatever they say."""
        if policy is not None:
            try:
                document = json.loads(policy)
            except ValueError:
                document = None
            if not isinstance(document, dict) or "Statement" not in document:
                raise MalformedPolicyDocument("The policy is not a JSON policy document.")
        if policy_arns is not None and len(policy_arns) > MAX_POLICY_ARNS:
            raise ValidationError(
                f"At most {MAX_POLICY_ARNS} managed policy ARNs can be passed (PolicyArns)."
            )

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        token: str,
        duration: int | None = None,
        policy: str | None = None,
        policy_arns: list[dict[str, Any]] | None = None,
        provider_id: str | None = None,
    ) -> AssumedRole:
        role = parse_role_arn(role_arn)
        if role is None:
            raise ValidationError("Request ARN is invalid")
        if provider_id is not None:
            raise InvalidIdentityToken(
                "cogsync accepts OpenID Connect tokens from its Cognito Identity only; "
                "ProviderId (OAuth 2.0 access tokens) is not supported."
            )
        self._check_policies(policy, policy_arns)
        lifetime = self.credentials.lifetime
        if duration is not None and duration > lifetime:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        claims = self._claims(token)
        pool_id, identity_id = str(claims["aud"]), str(claims["sub"])
        amr = [str(v) for v in claims.get("amr") or ()]
        with self.store.read() as tx:
            pool = tx.get_pool(pool_id)
            if pool is None:
                raise InvalidIdentityToken(f"The token's identity pool '{pool_id}' does not exist.")
            identity = tx.get_identity(identity_id)
            if (
                identity is None
                or identity.identity_pool_id != pool_id
                or tx.is_inaccessible(identity_id)
            ):
                raise IdpRejectedClaim(f"The token's identity '{identity_id}' no longer exists.")
            roles = tx.pool_roles(pool_id)
        if not pool.allow_classic_flow:
            raise AccessDenied(
                f"{NOT_AUTHORIZED}: the basic (classic) flow is not enabled for identity pool "
                f"'{pool_id}' (AllowClassicFlow)."
            )
        if not may_assume(roles, role.arn, amr):
            raise AccessDenied(NOT_AUTHORIZED)
        credentials = self.credentials.issue(
            pool.account_id,
            pool_id,
            identity_id,
            role_arn=role.arn,
            session_name=session_name,
            lifetime=duration if duration is not None else lifetime,
        )
        return AssumedRole(
            credentials, role, session_name, identity_id, pool_id, str(claims.get("iss", ""))
        )

    @staticmethod
    def caller_identity(caller: Caller) -> CallerIdentity:
        """Who signed the request: a developer key acts as its account's root, identity
        credentials as their role's session (or, issued without a role, as the identity)."""
        if caller.is_developer:
            return CallerIdentity(
                caller.account_id, caller.account_id, f"arn:aws:iam::{caller.account_id}:root"
            )
        session = caller.session_name or ROLE_SESSION_NAME
        role = parse_role_arn(caller.role_arn) if caller.role_arn else None
        if role is None:
            assert caller.identity_id is not None
            arn = f"arn:aws:sts::{caller.account_id}:assumed-role/{NO_ROLE_NAME}/{session}"
            return CallerIdentity(caller.identity_id, caller.account_id, arn)
        user_id = f"{role.role_id}:{session}"
        return CallerIdentity(user_id, role.account_id, role.session_arn(session))
