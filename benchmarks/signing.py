"""The exact bytes of SigV4-signed HTTP/1.1 requests, signed by botocore before a phase.

A signature stays valid for 15 minutes, so requests built right before a timed phase
cost the load generator nothing but writing them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.server import BenchServer

REGION = "us-east-1"


class RawSigner:
    """Signs requests for one AWS service at one ``host:port``."""

    def __init__(self, host: str, port: int, access_key_id: str, secret_access_key: str,
                 service: str, region: str = REGION):
        self.netloc = f"{host}:{port}"
        self.auth = SigV4Auth(Credentials(access_key_id, secret_access_key), service, region)

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> bytes:
        headers = dict(headers or ({"Content-Type": "application/json"} if body else {}))
        request = AWSRequest(method=method, url=f"http://{self.netloc}{path}", data=body,
                             headers=headers)
        self.auth.add_auth(request)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        if body or method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Signer(RawSigner):
    """Cognito Sync requests to a benchmark server, signed with its developer key."""

    def __init__(self, server: BenchServer):
        super().__init__(server.host, server.port, server.access_key_id,
                         server.secret_access_key, "cognito-sync")
        self.server = server

    def dataset_path(self, identity: str, dataset: str) -> str:
        pool = quote(self.server.pool_id, safe="")
        return f"/identitypools/{pool}/identities/{quote(identity, safe='')}/datasets/{dataset}"

    def list_records(self, identity: str, dataset: str, query: str = "lastSyncCount=0") -> bytes:
        return self.request("GET", f"{self.dataset_path(identity, dataset)}/records?{query}")

    def describe_dataset(self, identity: str, dataset: str) -> bytes:
        return self.request("GET", self.dataset_path(identity, dataset))

    def update_records(self, identity: str, dataset: str, token: str,
                       patches: list[dict[str, Any]]) -> bytes:
        body = json.dumps({"SyncSessionToken": token, "DeviceId": "bench-device",
                           "RecordPatches": patches}, separators=(",", ":")).encode()
        return self.request("POST", self.dataset_path(identity, dataset), body)

    def list_datasets(self, identity: str) -> bytes:
        pool = quote(self.server.pool_id, safe="")
        return self.request("GET", f"/identitypools/{pool}/identities/"
                            f"{quote(identity, safe='')}/datasets")
