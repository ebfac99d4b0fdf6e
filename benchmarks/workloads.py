"""The signed Cognito Sync requests that the benchmark times, and the checks that every
acknowledged write was applied exactly once."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.load import PhaseResult, exchange
from benchmarks.server import BenchServer
from benchmarks.signing import REGION, Signer

UPDATE_IDENTITIES = 40
UPDATE_DATASETS_PER_IDENTITY = 4  # within the 20 datasets per identity
LIST_IDENTITIES = 16
PATCHES = 10
VALUE = "v" * 32  # ~42 bytes a record with its key: ~2,400 writes fit in a 1 MiB dataset


def identity_id(n: int) -> str:
    return f"{REGION}:00000000-0000-4000-8000-{n:012x}"


def ok_json(results: list[tuple[int, bytes]], what: str) -> list[dict[str, Any]]:
    """The parsed bodies of setup or check requests, which must all have answered 200."""
    bad = [(s, b[:300]) for s, b in results if s != 200]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} of {len(results)} failed, first: {bad[0]}")
    return [json.loads(body) for _, body in results]


@dataclass
class UpdateWorkload:
    """Fresh keys (SyncCount 0) spread round-robin over many datasets: every call is a
    valid, conflict-free write that adds 10 records and bumps its dataset's count by 1.
    Workloads on one database (replicas) keep apart with a ``first_identity`` each; one
    request at a time needs fewer ``identities`` than many connections."""

    signer: Signer
    first_identity: int = 0
    identities: int = UPDATE_IDENTITIES
    datasets: list[tuple[str, str, str]] = field(default_factory=list)  # identity, name, token
    sent: int = 0  # requests built so far; also makes every key unique
    succeeded: int = 0

    def setup(self, server: BenchServer) -> None:
        pairs = [(identity_id(self.first_identity + i), f"bench-{d}")
                 for i in range(self.identities)
                 for d in range(UPDATE_DATASETS_PER_IDENTITY)]
        answers = ok_json(
            exchange(server.host, server.port,
                     [self.signer.list_records(i, d) for i, d in pairs]),
            "ListRecords for session tokens",
        )
        self.datasets = [(i, d, a["SyncSessionToken"]) for (i, d), a in zip(pairs, answers,
                                                                            strict=True)]
        # A dataset's first write creates it, which costs more: made here, so that every
        # measured write goes to an existing dataset.
        first = self.build(len(self.datasets))
        ok_json(exchange(server.host, server.port, first), "UpdateRecords creating datasets")
        self.succeeded += len(first)

    def build(self, count: int) -> list[bytes]:
        requests = []
        now = round(time.time(), 3)
        for n in range(self.sent, self.sent + count):
            identity, dataset, token = self.datasets[n % len(self.datasets)]
            patches = [{"Op": "replace", "Key": f"k{n}-{j}", "Value": VALUE, "SyncCount": 0,
                        "DeviceLastModifiedDate": now} for j in range(PATCHES)]
            requests.append(self.signer.update_records(identity, dataset, token, patches))
        self.sent += count
        per_dataset = math.ceil(self.sent / len(self.datasets)) * PATCHES
        if per_dataset * (len(f"k{self.sent}-9") + len(VALUE)) > 0.9 * 1024 * 1024:
            raise RuntimeError("too many writes for the benchmark's datasets: use fewer seconds")
        return requests

    def count(self, result: PhaseResult) -> None:
        self.succeeded += result.requests - sum(result.statuses.values())

    def verify(self, server: BenchServer) -> str:
        """Every acknowledged write was applied exactly once: the datasets' sync counts add
        up to the number of successful UpdateRecords, and they hold 10 records for each."""
        answers = ok_json(
            exchange(server.host, server.port,
                     [self.signer.list_records(i, d, "lastSyncCount=0&maxResults=1")
                      for i, d, _ in self.datasets]),
            "ListRecords to verify the writes",
        )
        total = sum(a["DatasetSyncCount"] for a in answers)
        if total != self.succeeded:
            return f"sync counts add up to {total}, but {self.succeeded} writes succeeded"
        listings = ok_json(
            exchange(server.host, server.port, [
                self.signer.list_datasets(identity)
                for identity in sorted({i for i, _, _ in self.datasets})]),
            "ListDatasets to verify the writes",
        )
        records = sum(d["NumRecords"] for listing in listings for d in listing["Datasets"])
        if records != PATCHES * self.succeeded:
            return f"{records} records stored, expected {PATCHES} x {self.succeeded}"
        return ""


@dataclass
class ListWorkload:
    """Datasets of 100 records; each call lists one from lastSyncCount 0 without a token,
    so the server opens a new sync session for it."""

    signer: Signer
    identities: list[str] = field(default_factory=list)

    def setup(self, server: BenchServer) -> None:
        self.identities = [identity_id(10_000 + i) for i in range(LIST_IDENTITIES)]
        answers = ok_json(exchange(server.host, server.port,
                                    [self.signer.list_records(i, "profile")
                                     for i in self.identities]), "ListRecords for tokens")
        patches = [{"Op": "replace", "Key": f"setting-{k:03d}", "Value": f"value {k} " + VALUE,
                    "SyncCount": 0} for k in range(100)]
        ok_json(exchange(server.host, server.port, [
            self.signer.update_records(i, "profile", a["SyncSessionToken"], patches)
            for i, a in zip(self.identities, answers, strict=True)]), "UpdateRecords setup")

    def build(self) -> list[bytes]:
        return [self.signer.list_records(i, "profile") for i in self.identities]

    def check(self, server: BenchServer, requests: list[bytes]) -> None:
        for answer in ok_json(exchange(server.host, server.port, requests), "ListRecords"):
            if len(answer["Records"]) != 100 or "NextToken" in answer:
                raise RuntimeError(f"ListRecords returned {len(answer['Records'])} records")
