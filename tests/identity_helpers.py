"""Clients and set-up shared by the Cognito Identity tests."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from tests.server import REGION, ServerProcess

DEVELOPER_PROVIDER = "login.example.app"
GCM_APP = "arn:aws:sns:us-east-1:123456789012:app/GCM/example"


def unsigned_identity_client(server: ServerProcess) -> Any:
    """What a phone has before it has credentials: unsigned Cognito Identity calls."""
    return boto3.client("cognito-identity", endpoint_url=server.endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))


def make_pool(server: ServerProcess, *, unauthenticated: bool = True, push: bool = True,
              **extra: Any) -> str:
    identity = server.client("cognito-identity")
    pool_id = identity.create_identity_pool(
        IdentityPoolName=f"pool-{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=unauthenticated,
        DeveloperProviderName=DEVELOPER_PROVIDER,
        **extra,
    )["IdentityPoolId"]
    if push:
        server.client().set_identity_pool_configuration(
            IdentityPoolId=pool_id, PushSync={"ApplicationArns": [GCM_APP]})
    return pool_id


def sync_client_for(server: ServerProcess, credentials: dict[str, Any]) -> Any:
    """A Cognito Sync client signing with temporary identity credentials."""
    return boto3.client(
        "cognito-sync", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"max_attempts": 1}),
    )


def unauthenticated_credentials(server: ServerProcess, pool_id: str) -> tuple[str, Any]:
    """A fresh unauthenticated identity and its temporary credentials."""
    public = unsigned_identity_client(server)
    identity_id = public.get_id(IdentityPoolId=pool_id)["IdentityId"]
    return identity_id, public.get_credentials_for_identity(IdentityId=identity_id)[
        "Credentials"]


def new_unauthenticated(server: ServerProcess, pool_id: str) -> tuple[str, Any]:
    """A fresh unauthenticated identity and a sync client acting as it."""
    identity_id, creds = unauthenticated_credentials(server, pool_id)
    return identity_id, sync_client_for(server, creds)


def sts_client(server: ServerProcess, credentials: dict[str, Any] | None = None,
               **config: Any) -> Any:
    """boto3's STS against the server: unsigned (what AssumeRoleWithWebIdentity needs), or
    signed with temporary credentials as STS returns them."""
    if credentials is None:
        return boto3.client("sts", endpoint_url=server.endpoint, region_name=REGION,
                            config=Config(signature_version=UNSIGNED,
                                          retries={"max_attempts": 1}, **config))
    return boto3.client(
        "sts", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials.get("SecretAccessKey") or credentials["SecretKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"max_attempts": 1}),
    )


def sts_credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    """STS's credentials in the shape sync_client_for takes (Cognito Identity's names)."""
    return {"AccessKeyId": credentials["AccessKeyId"],
            "SecretKey": credentials["SecretAccessKey"],
            "SessionToken": credentials["SessionToken"]}
