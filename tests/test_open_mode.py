"""Open mode: only when the operator asks for it, unsigned requests are accepted."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import REGION, new_identity_id


def _unsigned(endpoint: str) -> Any:
    return boto3.client("cognito-sync", endpoint_url=endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED,
                                      retries={"total_max_attempts": 1}))


def test_open_mode_accepts_unsigned_requests(make_server: Any) -> None:
    srv = make_server("--open")
    assert any("OPEN MODE" in line for line in srv.output)
    client = _unsigned(srv.endpoint)
    where = dict(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id(), DatasetName="d")
    token = client.list_records(**where)["SyncSessionToken"]
    client.update_records(**where, SyncSessionToken=token,
                          RecordPatches=[{"Op": "replace", "Key": "k", "Value": "v",
                                          "SyncCount": 0}])
    assert client.list_records(**where)["Records"][0]["Value"] == "v"
    # Still one account's view: its pool is there, validation still applies.
    usages = client.list_identity_pool_usage()["IdentityPoolUsages"]
    assert [u["IdentityPoolId"] for u in usages] == [srv.pool_id]
    with pytest.raises(ClientError) as excinfo:
        client.describe_dataset(IdentityPoolId="bad", IdentityId="x:1", DatasetName="d")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_unsigned_requests_are_refused_by_default(server: Any, pool_id: str) -> None:
    client = _unsigned(server.endpoint)
    with pytest.raises(ClientError) as excinfo:
        client.list_datasets(IdentityPoolId=pool_id, IdentityId=new_identity_id())
    error = excinfo.value.response
    assert error["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
