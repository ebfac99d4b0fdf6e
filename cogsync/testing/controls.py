"""The test controls of a server started with ``--test-controls``, called over HTTP.

Each method is one signed request to ``/_cogsync/test/...`` (docs/testing.md lists them
for other languages). The server must have been started with ``--test-controls``
(:class:`~cogsync.testing.CogsyncServer` does so by default).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

PATH = "/_cogsync/test/"


class ControlError(Exception):
    """The server refused a control: the AWS error code, the HTTP status, the message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


class Controls:
    """Faults and server-side moves on one server, as its developer key."""

    def __init__(self, endpoint: str, region: str, access_key_id: str, secret_access_key: str,
                 timeout: float = 330.0):
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._key = (access_key_id, secret_access_key)
        self.timeout = timeout

    def call(self, method: str, control: str, body: dict[str, Any] | None = None) -> Any:
        """One control: ``method`` on ``/_cogsync/test/<control>``, signed (SigV4,
        service ``cognito-sync``) with the developer key; its JSON answer."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        data = json.dumps({k: v for k, v in (body or {}).items() if v is not None}).encode()
        request = AWSRequest(method=method, url=self.endpoint + PATH + control, data=data,
                             headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(*self._key), "cognito-sync", self.region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=data, method=method,
                                          headers=dict(request.headers.items()))
        try:
            with urllib.request.urlopen(prepared, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw)
            except ValueError:
                error = {"message": raw.decode(errors="replace")}
            raise ControlError(exc.code, str(error.get("__type", "")),
                               str(error.get("message", ""))) from None

    # --- faults -----------------------------------------------------------------

    def fail(self, operation: str, error: str, *, count: int = 1, message: str | None = None,
             status: int | None = None, delay: float = 0.0, pool_id: str | None = None,
             identity_id: str | None = None, dataset: str | None = None) -> dict[str, Any]:
        """The next ``count`` calls of ``operation`` (of that pool, identity, dataset,
        if given) answer ``error`` (``"ResourceConflictException"``, or without
        ``Exception``) with the status the service model gives it, after ``delay``
        seconds. Returns the fault as the server holds it."""
        return self.call("POST", "faults", {  # type: ignore[no-any-return]
            "Operation": operation, "Error": error, "Count": count, "Message": message,
            "Status": status, "DelaySeconds": delay or None, "IdentityPoolId": pool_id,
            "IdentityId": identity_id, "DatasetName": dataset})

    def delay(self, operation: str, seconds: float, *, count: int = 1,
              pool_id: str | None = None, identity_id: str | None = None,
              dataset: str | None = None) -> dict[str, Any]:
        """The next ``count`` calls of ``operation`` wait ``seconds``, then run."""
        return self.call("POST", "faults", {  # type: ignore[no-any-return]
            "Operation": operation, "DelaySeconds": seconds, "Count": count,
            "IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": dataset})

    def faults(self) -> list[dict[str, Any]]:
        """Every fault, with ``Remaining`` uses and ``Hits`` so far."""
        return self.call("GET", "faults")["Faults"]  # type: ignore[no-any-return]

    def clear(self) -> int:
        """Removes every fault; returns how many there were."""
        return self.call("DELETE", "faults")["Cleared"]  # type: ignore[no-any-return]

    # --- moves ------------------------------------------------------------------

    def write_records(self, pool_id: str, identity_id: str, dataset: str,
                      records: dict[str, str | None], *, device_id: str | None = None
                      ) -> dict[str, Any]:
        """Writes ``records`` (None removes a key) as another device that has just
        synced: the dataset's sync count moves on, as with any write. Returns
        ``DatasetSyncCount`` and the ``Records`` written."""
        return self.call("POST", "write-records", {  # type: ignore[no-any-return]
            "IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": dataset,
            "Records": records, "DeviceId": device_id})

    def delete_dataset(self, pool_id: str, identity_id: str, dataset: str) -> dict[str, Any]:
        """Deletes the dataset, as another device would."""
        return self.call("POST", "delete-dataset", {  # type: ignore[no-any-return]
            "IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": dataset})

    def merge_identities(self, pool_id: str, source: str, destination: str) -> str:
        """Merges identity ``source`` into ``destination`` (both from Cognito Identity),
        as a login they come to share would; returns the identity kept."""
        return self.call("POST", "merge-identities", {  # type: ignore[no-any-return]
            "IdentityPoolId": pool_id, "SourceIdentityId": source,
            "DestinationIdentityId": destination})["IdentityId"]

    def expire_sessions(self, identity_id: str | None = None, *,
                        credentials: bool = True) -> float:
        """Sync session tokens issued until now (of one identity, or all) expire, and
        temporary credentials too unless ``credentials`` is False (that call takes a
        second). Returns the moment, in epoch seconds."""
        return self.call("POST", "expire-sessions", {  # type: ignore[no-any-return]
            "IdentityId": identity_id, "Credentials": credentials})["ExpiredBefore"]
