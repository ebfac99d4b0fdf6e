"""A history checker for concurrent sync clients.

Each client runs sync cycles on shared datasets: ListRecords, then UpdateRecords that
appends its own token to a list value, using the SyncCount it read. Every call and its
outcome is recorded. The checker then proves from the history and the final state:
- every acknowledged write is visible (its token is in the final value);
- sync counts handed out per dataset are unique and dense (1..N, N = final count);
- no conflict was missed: each acknowledged write saw the value the write before it (in
  sync-count order) produced, so no update was lost or applied to a stale read.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


@dataclass
class Event:
    client: int
    dataset: str
    read_value: str  # what the client read before writing
    written_value: str
    sync_count: int | None  # None: refused with a conflict, or no answer
    outcome: str  # "ok", "conflict", "error:<code>"


@dataclass
class History:
    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)


def client_loop(number: int, make_client: Callable[[int], Any], where: Callable[[str], dict],
                datasets: list[str], cycles: int, history: History) -> None:
    for cycle in range(cycles):
        client = make_client(number + cycle)  # spread over replicas
        name = datasets[(number + cycle) % len(datasets)]
        listing = client.list_records(**where(name))
        record = next((r for r in listing["Records"] if r["Key"] == "log"), None)
        value = record["Value"] if record else ""
        count = record["SyncCount"] if record else 0
        token = f"c{number}.{cycle}"
        new_value = f"{value},{token}" if value else token
        try:
            written = client.update_records(
                **where(name), SyncSessionToken=listing["SyncSessionToken"],
                RecordPatches=[{"Op": "replace", "Key": "log", "Value": new_value,
                                "SyncCount": count}])["Records"]
            history.add(Event(number, name, value, new_value, written[0]["SyncCount"], "ok"))
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            outcome = "conflict" if code == "ResourceConflictException" else f"error:{code}"
            history.add(Event(number, name, value, new_value, None, outcome))


def run(make_client: Callable[[int], Any], where: Callable[[str], dict], datasets: list[str],
        clients: int, cycles: int) -> History:
    history = History()
    threads = [threading.Thread(target=client_loop,
                                args=(n, make_client, where, datasets, cycles, history))
               for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert time.monotonic() - started < 120, "the workload did not finish"
    return history


def check(history: History, final: dict[str, tuple[str, int]]) -> dict[str, int]:
    """``final``: dataset -> (final value, final DatasetSyncCount). Returns writes per set."""
    errors = [e for e in history.events if e.outcome.startswith("error")]
    assert not errors, f"unexpected errors: {errors[:3]}"
    acknowledged: dict[str, list[Event]] = defaultdict(list)
    for event in history.events:
        if event.outcome == "ok":
            acknowledged[event.dataset].append(event)
    writes: dict[str, int] = {}
    for name, events in acknowledged.items():
        counts = sorted(e.sync_count for e in events if e.sync_count is not None)
        assert counts == list(range(1, len(counts) + 1)), f"{name}: counts not dense/unique"
        value, final_count = final[name]
        assert final_count == len(counts), f"{name}: final count {final_count} != {len(counts)}"
        by_count = sorted(events, key=lambda e: e.sync_count or 0)
        previous = ""
        for event in by_count:
            assert event.read_value == previous, (
                f"{name}: write {event.sync_count} was based on a stale read (lost update)")
            previous = event.written_value
        assert value == previous, f"{name}: final value is not the last acknowledged write"
        tokens = value.split(",")
        assert len(tokens) == len(set(tokens)) == len(counts)
        writes[name] = len(counts)
    return writes


def run_and_check(clients: list[Any], pool_id: str, identity: str, names: list[str],
                  writers: int, cycles: int) -> None:
    """The whole workload on datasets ``names``, checked; asserts it did contend."""

    def where(name: str) -> dict[str, str]:
        return {"IdentityPoolId": pool_id, "IdentityId": identity, "DatasetName": name}

    result = run(lambda n: clients[n % len(clients)], where, names, writers, cycles)
    final = {}
    for name in names:
        listing = clients[0].list_records(**where(name))
        final[name] = (listing["Records"][0]["Value"], listing["DatasetSyncCount"])
    writes = check(result, final)
    conflicts = sum(e.outcome == "conflict" for e in result.events)
    assert sum(writes.values()) + conflicts == writers * cycles
    assert conflicts > 0  # the workload did contend, so the check meant something


@dataclass
class Storm:
    """Writes of 5 fresh keys per call from several threads, with what was acknowledged."""

    acked: list[tuple[str, list[str]]] = field(default_factory=list)
    unknown: list[tuple[str, list[str]]] = field(default_factory=list)  # no answer came


def write_storm(clients: Callable[[int, int], Any], pool_id: str, identity: str,
                disturb: Callable[[], None], writers: int = 4, seed: int | None = None) -> Storm:
    """Runs writers (``clients(writer, call)`` picks a client) while ``disturb()`` runs,
    e.g. kills and restarts servers; returns what was acknowledged. Each call writes 5
    fresh keys; with a ``seed``, 1 to 12 of them, as that seed draws."""
    from tests.test_sync_semantics import put

    storm, stop, lock = Storm(), threading.Event(), threading.Lock()

    def writer(n: int) -> None:
        where = dict(IdentityPoolId=pool_id, IdentityId=identity, DatasetName=f"storm{n}")
        rng = random.Random(None if seed is None else seed * 100 + n)
        i = 0
        while not stop.is_set():
            size = 5 if seed is None else rng.randint(1, 12)
            keys = [f"w{n}-{i}-{j}" for j in range(size)]
            i += 1
            try:
                client = clients(n, i)
                token = client.list_records(**where, MaxResults=1)["SyncSessionToken"]
            except Exception:
                time.sleep(0.05)  # that server is down: nothing was sent to write
                continue
            try:
                client.update_records(**where, SyncSessionToken=token,
                                      RecordPatches=[put(k, k) for k in keys])
                with lock:
                    storm.acked.append((where["DatasetName"], keys))
            except Exception:
                with lock:
                    storm.unknown.append((where["DatasetName"], keys))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        disturb()
    finally:
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
    return storm


def storm_faults(storm: Storm, client: Any, pool_id: str, identity: str,
                 writers: int = 4) -> tuple[int, int]:
    """(acknowledged calls not wholly stored, unanswered calls stored in part)."""
    stored: dict[str, set[str]] = {}
    for n in range(writers):
        name = f"storm{n}"
        records = client.list_records(IdentityPoolId=pool_id, IdentityId=identity,
                                      DatasetName=name, MaxResults=1024)["Records"]
        stored[name] = {r["Key"] for r in records}
    lost = sum(not set(keys) <= stored[name] for name, keys in storm.acked)
    half = sum(set(keys) & stored[name] not in (set(), set(keys))
               for name, keys in storm.unknown)
    return lost, half


def check_storm(storm: Storm, client: Any, pool_id: str, identity: str,
                writers: int = 4) -> None:
    """Every acknowledged call is wholly present; an unanswered one wholly or not at all."""
    lost, half = storm_faults(storm, client, pool_id, identity, writers)
    assert lost == 0, f"{lost} acknowledged writes are missing"
    assert half == 0, f"{half} calls were half applied"

