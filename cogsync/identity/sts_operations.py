"""The STS operations cogsync serves (query protocol): validated input in, output shape out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.identity.web_identity import WebIdentityService

Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[WebIdentityService, Caller | None, Params], Result]


def assume_role_with_web_identity(
    svc: WebIdentityService, caller: Caller | None, p: Params
) -> Result:
    assumed = svc.assume_role(
        p["RoleArn"],
        p["RoleSessionName"],
        p["WebIdentityToken"],
        p.get("DurationSeconds"),
        p.get("Policy"),
        p.get("PolicyArns"),
        p.get("ProviderId"),
    )
    creds, role, session = assumed.credentials, assumed.role, assumed.session_name
    return {
        "Credentials": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_key,
            "SessionToken": creds.session_token,
            "Expiration": creds.expiration,
        },
        "SubjectFromWebIdentityToken": assumed.subject,
        "AssumedRoleUser": {
            "AssumedRoleId": f"{role.role_id}:{session}",
            "Arn": role.session_arn(session),
        },
        "Provider": assumed.provider,
        "Audience": assumed.audience,
    }


def get_caller_identity(svc: WebIdentityService, caller: Caller | None, p: Params) -> Result:
    assert caller is not None, "GetCallerIdentity is signed"
    who = svc.caller_identity(caller)
    return {"UserId": who.user_id, "Account": who.account, "Arn": who.arn}


HANDLERS: dict[str, Handler] = {
    "AssumeRoleWithWebIdentity": assume_role_with_web_identity,
    "GetCallerIdentity": get_caller_identity,
}
