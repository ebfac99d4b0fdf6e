"""IAM roles of identity pools: the ARNs, how SetIdentityPoolRoles checks them, and which
role an identity's credentials are for.

cogsync has no IAM: a role grants nothing by itself (credentials act as their identity,
under the same authorization matrix, whatever the role). Roles decide who may get
credentials at all (an unauthenticated identity needs the pool's unauthenticated role,
role mappings may deny a login) and they name the credentials, as AWS does
(``GetCallerIdentity``, ``AssumedRoleUser``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cogsync.errors import InvalidParameter, NotAuthorized, ServiceError
from cogsync.store.pool_access_queries import PoolRoles

AUTHENTICATED = "authenticated"
UNAUTHENTICATED = "unauthenticated"
# arn:<partition>:iam::<account>:role/<path/><name>, as IAM spells role ARNs.
_ROLE_ARN = re.compile(
    r"arn:(aws[a-z-]*):iam::([0-9]{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})", re.ASCII
)


class InvalidIdentityPoolConfiguration(ServiceError):
    code = "InvalidIdentityPoolConfigurationException"


@dataclass(frozen=True, slots=True)
class RoleArn:
    arn: str
    partition: str
    account_id: str
    name: str

    @property
    def role_id(self) -> str:
        """A stable stand-in for IAM's role id (``AROA`` and 17 characters)."""
        digest = hashlib.sha256(self.arn.encode()).digest()
        return "AROA" + base64.b32encode(digest).decode()[:17]

    def session_arn(self, session_name: str) -> str:
        sts = f"arn:{self.partition}:sts::{self.account_id}"
        return f"{sts}:assumed-role/{self.name}/{session_name}"


def parse_role_arn(text: str) -> RoleArn | None:
    m = _ROLE_ARN.fullmatch(text)
    if m is None:
        return None
    return RoleArn(text, m.group(1), m.group(2), m.group(4))


def _require_role(arn: str, where: str) -> None:
    if parse_role_arn(arn) is None:
        raise InvalidParameter(
            f"{where}: '{arn}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
        )


def check_pool_roles(roles: PoolRoles, provider_known: Any) -> None:
    """SetIdentityPoolRoles' rules beyond the model's: role ARNs, and role mappings that
    are complete and name providers of the pool (``provider_known(name) -> bool``)."""
    for kind, arn in roles.roles.items():
        _require_role(arn, f"Roles.{kind}")
    for provider, mapping in roles.role_mappings.items():
        where = f"RoleMappings.{provider}"
        if not provider_known(provider):
            raise InvalidParameter(
                f"{where}: '{provider}' is not an identity provider of this identity pool"
            )
        if mapping.get("AmbiguousRoleResolution") is None:
            raise InvalidParameter(
                f"{where}: AmbiguousRoleResolution is required for the type {mapping['Type']}"
            )
        rules = (mapping.get("RulesConfiguration") or {}).get("Rules")
        if mapping["Type"] == "Rules" and not rules:
            raise InvalidParameter(f"{where}: RulesConfiguration is required for the type Rules")
        for i, rule in enumerate(rules or (), start=1):
            _require_role(rule["RoleARN"], f"{where}.Rules.{i}.RoleARN")


@dataclass(frozen=True, slots=True)
class LoginClaims:
    """A verified login's provider and the claims of its token (role mappings read them)."""

    provider: str
    claims: dict[str, Any]


_DENY = "Deny"


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _rule_matches(rule: dict[str, Any], claims: dict[str, Any]) -> bool:
    values = _claim_values(claims, rule["Claim"])
    wanted, how = rule["Value"], rule["MatchType"]
    if how == "Equals":
        return wanted in values
    if how == "NotEqual":
        return bool(values) and wanted not in values
    if how == "Contains":
        return any(wanted in v for v in values)
    return any(v.startswith(wanted) for v in values)  # StartsWith


def _mapped_role(mapping: dict[str, Any], claims: dict[str, Any], custom: str | None) -> str | None:
    """The role a mapping gives; None for the pool's authenticated role; _DENY."""
    if mapping["Type"] == "Token":
        offered = _claim_values(claims, "cognito:roles")
        preferred = _claim_values(claims, "cognito:preferred_role")
        if custom is not None:
            if custom in offered or custom in preferred:
                return custom
            raise NotAuthorized(
                f"CustomRoleArn '{custom}' is not among the roles of this login's token."
            )
        if preferred:
            return preferred[0]
        if len(offered) == 1:
            return offered[0]
    else:
        for rule in (mapping.get("RulesConfiguration") or {}).get("Rules") or ():
            if _rule_matches(rule, claims):
                return str(rule["RoleARN"])
    if mapping.get("AmbiguousRoleResolution") == "AuthenticatedRole":
        return None
    return _DENY


def resolve_role(
    roles: PoolRoles,
    authenticated: bool,
    logins: list[LoginClaims],
    custom_role_arn: str | None,
) -> str | None:
    """The role ARN credentials are issued for, or None for a pool without roles (cogsync
    then issues credentials without a role, as it always has). Raises what AWS raises
    when no role may be given."""
    if not roles.configured:
        if custom_role_arn is not None:
            raise NotAuthorized("CustomRoleArn was given but the identity pool has no roles.")
        return None
    chosen: str | None = None
    if authenticated:
        for login in logins:
            mapping = roles.role_mappings.get(login.provider)
            if mapping is None:
                continue
            chosen = _mapped_role(mapping, login.claims, custom_role_arn)
            if chosen == _DENY:
                raise NotAuthorized(
                    f"The ambiguous role mapping rules for: {login.provider} denied this request."
                )
            if chosen is not None:
                _check_custom(custom_role_arn, chosen)
                return chosen
            break
    kind = AUTHENTICATED if authenticated else UNAUTHENTICATED
    chosen = roles.roles.get(kind)
    if chosen is None:
        raise InvalidIdentityPoolConfiguration(
            "Invalid identity pool configuration. Check assigned IAM roles for this pool."
        )
    _check_custom(custom_role_arn, chosen)
    return chosen


def _check_custom(custom_role_arn: str | None, chosen: str) -> None:
    if custom_role_arn is not None and custom_role_arn != chosen:
        raise NotAuthorized(f"CustomRoleArn '{custom_role_arn}' is not a role of this identity.")


def may_assume(roles: PoolRoles, role_arn: str, amr: list[str]) -> bool:
    """The basic (classic) flow: whether a cogsync OpenID token with this ``amr`` may
    assume the role. The pool's roles stand in for the roles' trust policies, which in
    AWS name the pool (``aud``) and ``amr`` ``authenticated`` or ``unauthenticated``."""
    if AUTHENTICATED in amr:
        return roles.roles.get(AUTHENTICATED) == role_arn
    if UNAUTHENTICATED in amr:
        return roles.roles.get(UNAUTHENTICATED) == role_arn
    return False
