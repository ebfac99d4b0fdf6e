"""Settings on the device, synced through Amazon Cognito Sync as the Sync Manager does it.

The device keeps each record with the sync count it last saw, and the dataset's count.
A sync lists what changed since that count, takes in the other devices' changes (a key
changed here too keeps this device's value: the last writer wins), then sends this
device's changes with the counts they replace. If another device wrote in between, the
update is refused with ResourceConflictException; the next round lists again and sends
the new counts. A throttled call is tried again after a pause. Either way, after
``max_attempts`` rounds the sync gives up and says so; local changes are never dropped.

The clients come from the environment, as in any app: the endpoints
(``AWS_ENDPOINT_URL_COGNITO_IDENTITY``, ``AWS_ENDPOINT_URL_COGNITO_SYNC``), the region,
and the pool (``COGSYNC_POOL_ID`` here).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

THROTTLED = ("TooManyRequestsException", "LambdaThrottledException")
# The app does its own retrying (below), so its clients do not.
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


class SyncGaveUp(Exception):
    """The sync did not get through in ``max_attempts`` rounds; nothing local is lost."""


@dataclass
class Entry:
    value: str | None  # None: removed
    sync_count: int  # the count of the version this device last saw (0: never synced)
    dirty: bool  # changed here since


class SettingsSync:
    def __init__(self, logins: dict[str, str] | None = None, *, dataset: str = "settings",
                 device_id: str = "this-device", max_attempts: int = 5,
                 backoff_seconds: float = 0.05):
        self.pool_id = os.environ["COGSYNC_POOL_ID"]
        self.logins = logins or {}
        self.dataset = dataset
        self.device_id = device_id
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.entries: dict[str, Entry] = {}
        self.sync_count = 0
        self.rounds = self.conflicts = self.throttled = self.refreshes = 0
        self._cognito = boto3.client("cognito-identity", config=Config(
            signature_version=UNSIGNED, retries=NO_RETRIES))
        self.identity_id = self._cognito.get_id(IdentityPoolId=self.pool_id,
                                                Logins=self.logins)["IdentityId"]
        self._sync = self._signed_in()

    def _signed_in(self) -> Any:
        creds = self._cognito.get_credentials_for_identity(
            IdentityId=self.identity_id, Logins=self.logins)["Credentials"]
        return boto3.client(
            "cognito-sync", aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretKey"], aws_session_token=creds["SessionToken"],
            config=Config(retries=NO_RETRIES))

    # --- the settings, on the device --------------------------------------------

    def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return entry.value if entry else None

    def set(self, key: str, value: str | None) -> None:
        """Changes a setting here (None removes it); the next sync sends it."""
        entry = self.entries.get(key)
        self.entries[key] = Entry(value, entry.sync_count if entry else 0, True)

    def values(self) -> dict[str, str]:
        return {k: e.value for k, e in self.entries.items() if e.value is not None}

    def pending(self) -> list[str]:
        return sorted(k for k, e in self.entries.items() if e.dirty)

    # --- sync -------------------------------------------------------------------

    def synchronize(self) -> int:
        """Syncs both ways; returns the dataset's sync count. Raises SyncGaveUp."""
        for attempt in range(self.max_attempts):
            self.rounds += 1
            try:
                return self._round()
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "ResourceConflictException":
                    self.conflicts += 1  # another device wrote first: list again
                elif code in THROTTLED:
                    self.throttled += 1
                    time.sleep(self.backoff_seconds * 2**attempt)
                elif code == "ExpiredTokenException":
                    self.refreshes += 1
                    self._sync = self._signed_in()
                else:
                    raise
        raise SyncGaveUp(f"no sync after {self.max_attempts} rounds "
                         f"({self.conflicts} conflicts, {self.throttled} throttled); "
                         f"still to send: {', '.join(self.pending()) or 'nothing'}")

    def _where(self) -> dict[str, str]:
        return {"IdentityPoolId": self.pool_id, "IdentityId": self.identity_id,
                "DatasetName": self.dataset}

    def _list(self, since: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        records: list[dict[str, Any]] = []
        page: dict[str, Any] = {}
        token: str | None = None
        while True:
            extra = {"NextToken": token} if token else {}
            if page.get("SyncSessionToken"):
                extra["SyncSessionToken"] = page["SyncSessionToken"]
            page = self._sync.list_records(**self._where(), LastSyncCount=since, **extra)
            records += page["Records"]
            token = page.get("NextToken")
            if not token:
                return records, page

    def _round(self) -> int:
        records, listing = self._list(self.sync_count)
        if listing.get("DatasetDeletedAfterRequestedSyncCount"):
            # Deleted elsewhere: forget what came from it, keep what changed here.
            self.entries = {k: Entry(e.value, 0, True) for k, e in self.entries.items()
                            if e.dirty}
            self.sync_count = 0
            records, listing = self._list(0)
        for record in records:
            mine = self.entries.get(record["Key"])
            if mine is not None and mine.dirty:
                mine.sync_count = record["SyncCount"]  # this device's change wins
            else:
                self.entries[record["Key"]] = Entry(record.get("Value"), record["SyncCount"],
                                                    False)
        self.sync_count = listing.get("DatasetSyncCount", self.sync_count)
        patches = [
            {"Op": "remove", "Key": key, "SyncCount": entry.sync_count}
            if entry.value is None else
            {"Op": "replace", "Key": key, "Value": entry.value, "SyncCount": entry.sync_count}
            for key, entry in self.entries.items() if entry.dirty
        ]
        if not patches:
            return self.sync_count
        written = self._sync.update_records(
            **self._where(), DeviceId=self.device_id, RecordPatches=patches,
            SyncSessionToken=listing["SyncSessionToken"])["Records"]
        listed = self.sync_count
        for record in written:
            self.entries[record["Key"]] = Entry(record.get("Value"), record["SyncCount"], False)
            if record["SyncCount"] == listed + 1:
                # Nobody wrote between the listing and this update: nothing was skipped.
                # (Otherwise the count stays, and the next sync lists what came between.)
                self.sync_count = record["SyncCount"]
        return self.sync_count
