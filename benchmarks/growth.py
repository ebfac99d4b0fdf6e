"""Cost growth: latency and server memory as the stored data grows from 1,000 records.

The server is filled through its real API: each new identity gets one dataset of 100
records from one signed UpdateRecords of 100 patches (after the ListRecords that opens
its sync session), so 1,000 records are 10 identities and 1,000,000 are 10,000. That
stays within the default limits (20 datasets per identity, 1 MiB per dataset).

At each step, one request at a time (a closed loop of one connection, so the latency is
the server's unloaded service time, not queueing), over up to 64 identities drawn at
random from all those stored so far:

- UpdateRecords of 10 patches that replace 10 existing records, each with its current
  SyncCount (read right before), so the stored record count stays the same;
- ListRecords of the identity's 100 records from lastSyncCount 0, a new sync session.

Then the resident memory (VmRSS) of the server's process tree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.load import PhaseResult, exchange, run_phase
from benchmarks.procs import tree_rss_bytes
from benchmarks.run import phase_row
from benchmarks.server import BenchServer
from benchmarks.signing import Signer
from benchmarks.workloads import VALUE, identity_id, ok_json

RECORDS_PER_IDENTITY = 100
FIRST_STEP = 1_000
IDENTITY_BASE = 1 << 32  # growth identities' numbers, apart from the other workloads'
DATASET = "growth"
PROBED_IDENTITIES = 64
PROBE_PATCHES = 10
FILL_CHUNK = 500  # identities signed and sent per batch while filling
MIB = 1024 * 1024


def growth_steps(maximum: int) -> list[int]:
    """1,000 then ten times more each step, up to ``maximum`` (itself the last step)."""
    if maximum < FIRST_STEP or maximum % RECORDS_PER_IDENTITY:
        raise ValueError(f"the growth maximum must be >= {FIRST_STEP} and a multiple of "
                         f"{RECORDS_PER_IDENTITY}")
    steps, n = [], FIRST_STEP
    while n < maximum:
        steps.append(n)
        n *= 10
    return [*steps, maximum]


def _identity(n: int) -> str:
    return identity_id(IDENTITY_BASE + n)


@dataclass
class _Dataset:
    """What a probe needs to know of one identity's dataset to write it without conflict."""

    identity: str
    token: str
    sync_count: int
    record_counts: dict[str, int]  # key: the record's SyncCount
    probes: int = 0


class Growth:
    def __init__(self, server: BenchServer, seconds: float, data_dir: Path | None = None,
                 log: Callable[[str], None] = print):
        self.server = server
        self.signer = Signer(server)
        self.seconds = seconds
        self.data_dir = data_dir  # SQLite: its files' size is reported
        self.log = log
        self.stored = 0  # records
        self.empty_rss_mib = 0.0  # before the first step
        self.steps: list[dict[str, Any]] = []

    def _send(self, requests: list[bytes], what: str) -> list[dict[str, Any]]:
        return ok_json(exchange(self.server.host, self.server.port, requests), what)

    def fill(self, records: int) -> float:
        """Adds identities of 100 records up to ``records`` stored; returns the seconds."""
        started = time.perf_counter()
        patches = [{"Op": "replace", "Key": f"k{k:03d}", "Value": VALUE, "SyncCount": 0}
                   for k in range(RECORDS_PER_IDENTITY)]
        first, last = self.stored // RECORDS_PER_IDENTITY, records // RECORDS_PER_IDENTITY
        for low in range(first, last, FILL_CHUNK):
            identities = [_identity(n) for n in range(low, min(last, low + FILL_CHUNK))]
            sessions = self._send([self.signer.list_records(i, DATASET) for i in identities],
                                  "growth: ListRecords for tokens")
            self._send([self.signer.update_records(i, DATASET, s["SyncSessionToken"], patches)
                        for i, s in zip(identities, sessions, strict=True)],
                       "growth: UpdateRecords of 100 patches")
        self.stored = records
        return time.perf_counter() - started

    def _read(self, identities: list[str]) -> list[_Dataset]:
        answers = self._send([self.signer.list_records(i, DATASET) for i in identities],
                             "growth: ListRecords of the probed datasets")
        datasets = []
        for identity, answer in zip(identities, answers, strict=True):
            counts = {r["Key"]: r["SyncCount"] for r in answer["Records"]}
            if len(counts) != RECORDS_PER_IDENTITY or "NextToken" in answer:
                raise RuntimeError(f"growth: {identity} holds {len(counts)} records")
            datasets.append(_Dataset(identity, answer["SyncSessionToken"],
                                     answer["DatasetSyncCount"], counts))
        return datasets

    def _probes(self, datasets: list[_Dataset], count: int) -> list[bytes]:
        """``count`` UpdateRecords, round robin, each replacing the next 10 records of its
        dataset at their SyncCounts: all valid when sent one at a time, in order."""
        requests = []
        keys = sorted(datasets[0].record_counts)
        blocks = len(keys) // PROBE_PATCHES
        for n in range(count):
            dataset = datasets[n % len(datasets)]
            block = dataset.probes % blocks
            dataset.probes += 1
            chosen = keys[block * PROBE_PATCHES:(block + 1) * PROBE_PATCHES]
            patches = [{"Op": "replace", "Key": k, "Value": VALUE,
                        "SyncCount": dataset.record_counts[k]} for k in chosen]
            dataset.sync_count += 1
            dataset.record_counts.update(dict.fromkeys(chosen, dataset.sync_count))
            requests.append(self.signer.update_records(dataset.identity, DATASET,
                                                       dataset.token, patches))
        return requests

    def _phase(self, requests: list[bytes], seconds: float, repeat: bool) -> PhaseResult:
        return run_phase(self.server.host, self.server.port, requests, concurrency=1,
                         seconds=seconds, repeat=repeat, server_pid=self.server.pid)

    def _update_probe(self, identities: list[str]) -> PhaseResult:
        warm = self._phase(self._probes(self._read(identities), 200),
                           min(0.3, self.seconds), repeat=False)
        datasets = self._read(identities)
        before = sum(d.sync_count for d in datasets)
        count = int(max(warm.throughput, 100.0) * self.seconds * 1.5) + 50
        result = self._phase(self._probes(datasets, count), self.seconds, repeat=False)
        after = sum(d.sync_count for d in self._read(identities))
        applied = result.requests - result.errors
        if after - before != applied:
            raise RuntimeError(f"growth: {applied} probe writes acknowledged, "
                               f"but the sync counts grew by {after - before}")
        return result

    def _list_probe(self, identities: list[str]) -> PhaseResult:
        requests = [self.signer.list_records(i, DATASET) for i in identities]
        self._phase(requests, min(0.3, self.seconds), repeat=True)
        return self._phase(requests, self.seconds, repeat=True)

    def _data_mib(self) -> float | None:
        if self.data_dir is None:
            return None
        return round(sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file())
                     / MIB, 1)

    def step(self, records: int) -> dict[str, Any]:
        fill_seconds = self.fill(records)
        stored_identities = records // RECORDS_PER_IDENTITY
        identities = [_identity(n) for n in random.Random(records).sample(
            range(stored_identities), min(PROBED_IDENTITIES, stored_identities))]
        update = self._update_probe(identities)
        listing = self._list_probe(identities)
        row = {
            "records": records,
            "identities": stored_identities,
            "fill_seconds": round(fill_seconds, 1),
            "update": phase_row("UpdateRecords (replace 10)", 0, update, None),
            "list": phase_row("ListRecords (100 records)", 0, listing, None),
            "rss_mib": round(tree_rss_bytes(self.server.pid) / MIB, 1),
            "data_mib": self._data_mib(),
        }
        self.steps.append(row)
        self.log(f"  {records:>9,} records ({stored_identities:,} identities, filled in "
                 f"{fill_seconds:.1f} s): UpdateRecords p50 {row['update']['p50_ms']:.2f} ms "
                 f"p99 {row['update']['p99_ms']:.2f} ms; ListRecords p50 "
                 f"{row['list']['p50_ms']:.2f} ms p99 {row['list']['p99_ms']:.2f} ms; "
                 f"RSS {row['rss_mib']:.0f} MiB"
                 + (f"; data {row['data_mib']:.0f} MiB" if row["data_mib"] is not None else ""))
        return row

    def run(self, maximum: int) -> list[dict[str, Any]]:
        self.empty_rss_mib = round(tree_rss_bytes(self.server.pid) / MIB, 1)
        for records in growth_steps(maximum):
            self.step(records)
        return self.steps
