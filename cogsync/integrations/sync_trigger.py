"""Sync Trigger: a Lambda function sees, and may rewrite, an identity's UpdateRecords.

cogsync calls the Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``,
SigV4-signed with the operator's AWS credentials) at the configured endpoint, AWS Lambda
by default. The function gets the documented event and answers it with its
``datasetRecords`` changed; those replace the incoming patches.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from cogsync.errors import ServiceError
from cogsync.integrations.aws_clients import aws_client
from cogsync.metrics import SYNC_TRIGGER, SYNC_TRIGGER_SECONDS, child
from cogsync.sync.effects import InvalidLambdaFunctionOutput

_OPS = ("replace", "remove")


class LambdaSocketTimeout(ServiceError):
    code = "LambdaSocketTimeoutException"


class LambdaThrottled(ServiceError):
    code = "LambdaThrottledException"


class SyncTriggerInvoker:
    """Calls the pool's function. Its Lambda client is made at the first call: most
    servers never run a Sync Trigger, and making one (boto3 and the Lambda model) would
    cost every start a fifth of a second."""

    def __init__(self, endpoint: str | None, region: str, timeout: float = 5.0):
        self._endpoint = endpoint
        self._region = region
        self._timeout = timeout
        self._made: Any = None
        self._lock = threading.Lock()

    @property
    def _client(self) -> Any:
        with self._lock:
            if self._made is None:
                self._made = aws_client(
                    "lambda", self._endpoint, self._region,
                    connect_timeout=self._timeout, read_timeout=self._timeout,
                )
            return self._made

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The function's answer (its ``datasetRecords``), or the AWS error for its failure;
        each call counted by its outcome."""
        started = time.perf_counter()
        outcome = "error"  # an unexpected failure
        try:
            answer = self._invoke(function, event)
            outcome = "ok"
            return answer
        except LambdaSocketTimeout:
            outcome = "timeout"
            raise
        except LambdaThrottled:
            outcome = "throttled"
            raise
        except InvalidLambdaFunctionOutput:
            outcome = "invalid_output"
            raise
        finally:
            SYNC_TRIGGER_SECONDS.observe(time.perf_counter() - started)
            child(SYNC_TRIGGER, outcome).inc()

    def _invoke(self, function: str, event: dict[str, Any]) -> dict[str, dict[str, Any]]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )

        try:
            response = self._client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            raw = response["Payload"].read()
        except (ReadTimeoutError, ConnectTimeoutError):
            raise LambdaSocketTimeout(
                "The Lambda function did not answer within the time allowed"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("TooManyRequestsException", "ThrottlingException") or status == 429:
                raise LambdaThrottled("AWS Lambda throttled the Sync Trigger function") from None
            raise InvalidLambdaFunctionOutput(f"The Lambda function failed: {code}") from None
        except BotoCoreError as exc:
            raise InvalidLambdaFunctionOutput(f"The Lambda function failed: {exc}") from None
        if response.get("FunctionError"):
            raise InvalidLambdaFunctionOutput(f"The Lambda function raised an error: {raw[:200]!r}")
        return parse_output(raw)


def parse_output(raw: bytes) -> dict[str, dict[str, Any]]:
    """Validates the function's answer: an event whose datasetRecords are well formed."""

    def bad(why: str) -> InvalidLambdaFunctionOutput:
        return InvalidLambdaFunctionOutput(f"The Lambda function returned invalid output: {why}")

    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad("not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("datasetRecords"), dict):
        raise bad("datasetRecords is missing or not an object")
    records: dict[str, dict[str, Any]] = answer["datasetRecords"]
    for key, record in records.items():
        if not 1 <= len(key) <= 1024:
            raise bad(f"key '{key[:32]}' is not 1 to 1024 characters")
        if not isinstance(record, dict) or record.get("op", "replace") not in _OPS:
            raise bad(f"record '{key}' has no valid op")
        value = record.get("newValue")
        if record.get("op", "replace") == "replace" and not isinstance(value, str):
            raise bad(f"record '{key}' is a replace without a string newValue")
    return records
