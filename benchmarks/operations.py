"""The operations whose cost ``benchmarks.cost`` measures, as pre-built signed requests.

On a cogsync server: the bare endpoint, UpdateRecords of 10 new records, ListRecords of
a 100-record dataset from lastSyncCount 0 (a new sync session each), DescribeDataset of
that dataset and ListDatasets of an identity holding 4 datasets. On the anchor: its one
route. Every request is valid and must answer 200.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle, islice

from benchmarks.server import BenchServer
from benchmarks.signing import Signer
from benchmarks.workloads import UPDATE_IDENTITIES, ListWorkload, UpdateWorkload

ANCHOR = "anchor"
BARE, UPDATE, LIST, DESCRIBE, DATASETS = "bare", "update", "list", "describe", "datasets"
COGSYNC_OPERATIONS = (BARE, UPDATE, LIST, DESCRIBE, DATASETS)
NAMES = {
    ANCHOR: "anchor: GET / (Starlette)",
    BARE: "bare endpoint (GET /_cogsync/health)",
    UPDATE: "UpdateRecords (10 patches)",
    LIST: "ListRecords (100 records)",
    DESCRIBE: "DescribeDataset",
    DATASETS: "ListDatasets (4 datasets)",
}


DISTINCT = 16  # different requests of a read operation, sent in turn


def take(requests: Sequence[bytes], count: int) -> list[bytes]:
    """``count`` requests, cycling over ``requests``."""
    return list(islice(cycle(requests), count))


@dataclass
class CogsyncOperations:
    """The data and the requests of every cogsync operation on one server. Replicas of one
    database share the ListRecords data (``lists_from``) and keep their writes apart
    (``first_identity``)."""

    server: BenchServer
    first_identity: int = 0
    lists_from: CogsyncOperations | None = None
    writers: int = 16  # connections sending UpdateRecords at once
    updates: UpdateWorkload = field(init=False)
    lists: ListWorkload = field(init=False)
    update_rate: float = 0.0  # the fastest UpdateRecords rate seen, to size the next batch

    def __post_init__(self) -> None:
        signer = Signer(self.server)
        # 10 datasets a writer (4 an identity), so that writes seldom wait on each other:
        # from 16 identities (the ListDatasets requests) to 40 for 16 connections.
        identities = min(UPDATE_IDENTITIES, max(DISTINCT, math.ceil(2.5 * self.writers)))
        self.updates = UpdateWorkload(signer, self.first_identity, identities)
        self.lists = ListWorkload(signer)

    def setup(self) -> None:
        """Makes the data (or takes the first replica's) and checks that this server
        lists every 100-record dataset in full."""
        self.updates.setup(self.server)
        if self.lists_from is None:
            self.lists.setup(self.server)
        else:
            self.lists.identities = list(self.lists_from.lists.identities)
        self.lists.check(self.server, self.lists.build())

    def requests(self, operation: str, count: int) -> list[bytes]:
        """``count`` requests of ``operation``: new writes for UpdateRecords (signed now,
        valid for 15 minutes), else the same few valid reads in turn."""
        signer = self.lists.signer
        if operation == UPDATE:
            return self.updates.build(count)
        if operation == BARE:
            return [f"GET /_cogsync/health HTTP/1.1\r\nHost: {self.server.host}:"
                    f"{self.server.port}\r\n\r\n".encode()] * count
        if operation == LIST:
            return take(self.lists.build(), count)
        if operation == DESCRIBE:
            return take([signer.describe_dataset(i, "profile") for i in self.lists.identities],
                        count)
        if operation == DATASETS:
            identities = sorted({i for i, _, _ in self.updates.datasets})[:DISTINCT]
            return take([signer.list_datasets(i) for i in identities], count)
        raise ValueError(f"unknown operation {operation!r}")

    def for_phase(self, operation: str, seconds: float) -> tuple[list[bytes], bool]:
        """A timed phase's requests and whether they repeat: enough new writes for twice
        the fastest UpdateRecords rate seen (the phase ends early, and says so, if they run
        out); a few reads cycled over."""
        if operation == UPDATE:
            return self.requests(UPDATE, int((self.update_rate or 1000) * seconds * 2) + 200), False
        return self.requests(operation, DISTINCT), True

    def count(self, operation: str, acknowledged: int, rate: float = 0.0) -> None:
        """Counts the acknowledged writes (for ``verify``) and the rate seen."""
        if operation == UPDATE:
            self.updates.succeeded += acknowledged
            self.update_rate = max(self.update_rate, rate)

    def verify(self) -> str:
        """"" when every acknowledged UpdateRecords was applied exactly once."""
        return self.updates.verify(self.server)
