"""A concurrent history of writes and reads, and a checker that every read was a snapshot.

Writers run read-modify-write sync cycles on a few shared datasets: ListRecords, then an
UpdateRecords of a few keys (replace with a value no one else writes, or remove) at the
SyncCounts just read, with their own DeviceId. A conflict applies nothing; every other
write is acknowledged with its SyncCount. The sync counts of a dataset are dense (1..N),
so the history says exactly what each dataset held at each count.

Readers meanwhile list and describe: full ListRecords, deltas (``LastSyncCount``), paged
listings (``MaxResults`` with ``NextToken``), DescribeDataset, ListDatasets and
DescribeIdentityUsage. The checker holds each answer to the state it claims:
- a full or delta listing at ``DatasetSyncCount`` S is exactly the records of state S
  above the requested count (keys, values, tombstones and SyncCounts), and its
  LastModifiedBy is the device of write S: one missing or stale record is a violation;
- a paged listing reports the S it started from on every page; each record it returns is
  the version written at its SyncCount (<= S), no record comes twice, and a record of
  state S it lacks was written again after S (the client gets it with its next sync);
- DescribeDataset and each dataset of ListDatasets (the shape has no SyncCount):
  NumRecords, DataStorage and LastModifiedBy are those of one state the dataset could
  have had while the call ran: between the last write acknowledged before it began and
  the last write sent before it ended;
- DescribeIdentityUsage: DataStorage is the sum of the datasets' storage at sync counts
  each dataset could have had while the call ran.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

State = dict[str, tuple[str | None, int]]  # key -> (value, None for a tombstone; SyncCount)
KEYS = [f"k{i}" for i in range(10)]


@dataclass
class Write:
    dataset: str
    sync_count: int
    changes: dict[str, str | None]  # key -> new value, None: removed
    device: str
    started: float
    acknowledged: float


@dataclass
class Read:
    kind: str  # full, delta, paged, describe, datasets, usage
    dataset: str | None
    started: float
    ended: float
    answer: Any
    after: int = 0  # the LastSyncCount asked for (listings)


@dataclass
class History:
    writes: list[Write] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _records(listing: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    return [(r["Key"], r.get("Value"), r["SyncCount"]) for r in listing["Records"]]


def _writer(number: int, client_for: Callable[[int], Any], where: Callable[[str], dict],
            datasets: list[str], deadline: float, seed: int, history: History) -> None:
    rng = random.Random(seed * 1000 + number)
    device = f"writer{number}"
    for cycle in itertools.count():
        if time.monotonic() > deadline:
            return
        client, name = client_for(number + cycle), rng.choice(datasets)
        try:
            listing = client.list_records(**where(name), MaxResults=1024)
            counts = {key: count for key, _, count in _records(listing)}
            live = {key for key, value, _ in _records(listing) if value is not None}
            changes: dict[str, str | None] = {}
            for key in rng.sample(KEYS, rng.randint(1, 4)):
                removes = key in live and rng.random() < 0.25
                changes[key] = None if removes else f"{device}.{cycle}.{key}"
            patches = [{"Op": "remove", "Key": k, "SyncCount": counts.get(k, 0)} if v is None
                       else {"Op": "replace", "Key": k, "Value": v,
                             "SyncCount": counts.get(k, 0)} for k, v in changes.items()]
            started = time.monotonic()
            written = client.update_records(
                **where(name), SyncSessionToken=listing["SyncSessionToken"], DeviceId=device,
                RecordPatches=patches)["Records"]
            write = Write(name, written[0]["SyncCount"], changes, device, started,
                          time.monotonic())
            with history.lock:
                history.writes.append(write)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            with history.lock:
                if code == "ResourceConflictException":
                    history.conflicts += 1
                else:
                    history.errors.append(f"{device}: {code}")
        except Exception as exc:  # no answer: the history would not know the state
            with history.lock:
                history.errors.append(f"{device}: {exc!r}")


def _paged(client: Any, where: dict[str, str], after: int, size: int) -> list[dict[str, Any]]:
    pages = [client.list_records(**where, LastSyncCount=after, MaxResults=size)]
    while pages[-1].get("NextToken"):
        pages.append(client.list_records(**where, LastSyncCount=after, MaxResults=size,
                                         NextToken=pages[-1]["NextToken"]))
    return pages


def _reader(number: int, client_for: Callable[[int], Any], where: Callable[[str], dict],
            pool_id: str, identity: str, datasets: list[str], deadline: float, seed: int,
            history: History) -> None:
    rng = random.Random(seed * 1000 + 500 + number)
    kinds = ["full"] * 4 + ["delta", "paged", "describe", "datasets", "usage"]
    for cycle in itertools.count():
        if time.monotonic() > deadline:
            return
        client, name, kind = client_for(number + cycle), rng.choice(datasets), rng.choice(kinds)
        after = rng.randint(0, 20) if kind in ("delta", "paged") else 0
        started = time.monotonic()
        try:
            answer: Any
            if kind in ("full", "delta"):
                answer = client.list_records(**where(name), LastSyncCount=after,
                                             MaxResults=1024)
            elif kind == "paged":
                answer = _paged(client, where(name), after, rng.randint(1, 4))
            elif kind == "describe":
                answer = client.describe_dataset(**where(name))["Dataset"]
            elif kind == "datasets":
                answer = client.list_datasets(IdentityPoolId=pool_id, IdentityId=identity,
                                              MaxResults=60)["Datasets"]
            else:
                answer = client.describe_identity_usage(
                    IdentityPoolId=pool_id, IdentityId=identity)["IdentityUsage"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":  # not yet made
                with history.lock:
                    history.errors.append(f"reader{number}: {exc.response['Error']['Code']}")
            continue
        except Exception as exc:
            with history.lock:
                history.errors.append(f"reader{number}: {exc!r}")
            continue
        read = Read(kind, name, started, time.monotonic(), answer, after)
        with history.lock:
            history.reads.append(read)


def run(client_for: Callable[[int], Any], pool_id: str, identity: str, datasets: list[str],
        seconds: float, seed: int, writers: int = 4, readers: int = 4) -> History:
    """Writers and readers on ``datasets`` of one identity for ``seconds``."""

    def where(name: str) -> dict[str, str]:
        return {"IdentityPoolId": pool_id, "IdentityId": identity, "DatasetName": name}

    history, deadline = History(), time.monotonic() + seconds
    threads = [threading.Thread(target=_writer, args=(n, client_for, where, datasets,
                                                      deadline, seed, history))
               for n in range(writers)]
    threads += [threading.Thread(target=_reader, args=(n, client_for, where, pool_id,
                                                       identity, datasets, deadline, seed,
                                                       history))
                for n in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    assert not any(t.is_alive() for t in threads), "the workload did not finish"
    return history


# --- the checker ------------------------------------------------------------------------


class States:
    """What each dataset held at each sync count, from the acknowledged writes."""

    def __init__(self, writes: list[Write]):
        self.writes: dict[str, dict[int, Write]] = {}
        for write in writes:
            by_count = self.writes.setdefault(write.dataset, {})
            assert write.sync_count not in by_count, (
                f"{write.dataset}: sync count {write.sync_count} acknowledged twice")
            by_count[write.sync_count] = write
        self.states: dict[str, list[State]] = {}
        for name, by_count in self.writes.items():
            top = max(by_count)
            assert sorted(by_count) == list(range(1, top + 1)), (
                f"{name}: sync counts not dense: {sorted(set(range(1, top + 1)) - set(by_count))}"
                " missing")
            states: list[State] = [{}]
            for count in range(1, top + 1):
                state = dict(states[-1])
                for key, value in by_count[count].changes.items():
                    state[key] = (value, count)
                states.append(state)
            self.states[name] = states
        # For the window of a read: the highest count acknowledged (sent) by each moment.
        self._acknowledged = {name: _running_max([(w.acknowledged, c) for c, w in by.items()])
                              for name, by in self.writes.items()}
        self._sent = {name: _running_max([(w.started, c) for c, w in by.items()])
                      for name, by in self.writes.items()}

    def window(self, name: str, started: float, ended: float) -> range:
        """The sync counts ``name`` could have had during [started, ended]: from the last
        write acknowledged before it began to the last write sent before it ended."""
        low = _highest_before(self._acknowledged.get(name), started)
        high = _highest_before(self._sent.get(name), ended)
        return range(low, high + 1)

    def at(self, name: str, count: int) -> State | None:
        states = self.states.get(name, [{}])
        return states[count] if 0 <= count < len(states) else None

    def rewritten_after(self, name: str, key: str, count: int) -> bool:
        return any(key in w.changes for c, w in self.writes.get(name, {}).items() if c > count)


def storage(state: State) -> tuple[int, int]:
    """(NumRecords, DataStorage) of a state: live records, bytes of keys plus values."""
    live = [(k, v) for k, (v, _) in state.items() if v is not None]
    return len(live), sum(len(k.encode()) + len(v.encode()) for k, v in live)


def _check_listing(states: States, read: Read) -> list[str]:
    name, answer = read.dataset or "", read.answer
    count = answer["DatasetSyncCount"]
    state = states.at(name, count)
    if state is None:
        return [f"{read.kind} {name}: DatasetSyncCount {count} was never written"]
    expected = {(k, v, c) for k, (v, c) in state.items() if c > read.after}
    got = _records(answer)
    problems = []
    if len(got) != len(set(got)) or set(got) != expected:
        missing = sorted(expected - set(got))[:3]
        extra = sorted(set(got) - expected)[:3]
        problems.append(f"{read.kind} {name} at {count} (after {read.after}): "
                        f"missing {missing}, not of that state {extra}")
    if count > 0 and answer.get("LastModifiedBy") != states.writes[name][count].device:
        problems.append(f"{read.kind} {name} at {count}: LastModifiedBy "
                        f"{answer.get('LastModifiedBy')!r} is not write {count}'s device")
    return problems


def _check_paged(states: States, read: Read) -> list[str]:
    name, pages = read.dataset or "", read.answer
    count = pages[0]["DatasetSyncCount"]
    if any(page["DatasetSyncCount"] != count for page in pages):
        return [f"paged {name}: pages report different DatasetSyncCounts"]
    state = states.at(name, count)
    if state is None:
        return [f"paged {name}: DatasetSyncCount {count} was never written"]
    got = [record for page in pages for record in _records(page)]
    problems = []
    if len({key for key, _, _ in got}) != len(got):
        problems.append(f"paged {name} at {count}: a key came twice")
    for key, value, at in got:
        version = states.at(name, at)
        if not read.after < at <= count or version is None or version.get(key) != (value, at):
            problems.append(f"paged {name} at {count}: {key}={value!r}@{at} was never written")
    seen = {key for key, _, _ in got}
    for key, (_, at) in state.items():
        if at > read.after and key not in seen and not states.rewritten_after(name, key, count):
            problems.append(f"paged {name} at {count}: {key}@{at} is missing")
    return problems


def _check_dataset(states: States, name: str, dataset: dict[str, Any], read: Read
                   ) -> list[str]:
    """The Dataset shape has no SyncCount: its NumRecords, DataStorage and LastModifiedBy
    must be those of one state the dataset had while the call ran."""
    got = (dataset["NumRecords"], dataset["DataStorage"], dataset.get("LastModifiedBy"))
    for count in _window(states, name, read):
        state = states.at(name, count)
        if state is not None and count > 0 and got == (
                *storage(state), states.writes[name][count].device):
            return []
    return [f"{read.kind} {name}: NumRecords, DataStorage, LastModifiedBy {got} match no "
            "state the dataset had while it was read"]


def _window(states: States, name: str, read: Read) -> range:
    return states.window(name, read.started, read.ended)


def _running_max(moments: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    """Moments in order, with the highest count reached by each."""
    moments.sort()
    highest, running = 0, []
    for _, count in moments:
        highest = max(highest, count)
        running.append(highest)
    return [at for at, _ in moments], running


def _highest_before(series: tuple[list[float], list[int]] | None, moment: float) -> int:
    if series is None:
        return 0
    index = bisect.bisect_left(series[0], moment)
    return series[1][index - 1] if index else 0


def _check_usage(states: States, read: Read) -> list[str]:
    names = sorted(states.states)
    sums = {0}
    for name in names:
        sums = {s + storage(states.at(name, c) or {})[1]
                for s in sums for c in _window(states, name, read)}
    if read.answer["DataStorage"] not in sums:
        return [f"usage: DataStorage {read.answer['DataStorage']} matches no state the "
                "datasets had while it was read"]
    return []


def check(history: History) -> Counter[str]:
    """Asserts every read was a snapshot; returns the reads checked, by kind."""
    assert not history.errors, f"unexpected errors: {history.errors[:5]}"
    states = States(history.writes)
    problems: list[str] = []
    for read in history.reads:
        if read.kind in ("full", "delta"):
            problems += _check_listing(states, read)
        elif read.kind == "paged":
            problems += _check_paged(states, read)
        elif read.kind == "describe":
            problems += _check_dataset(states, read.dataset or "", read.answer, read)
        elif read.kind == "datasets":
            for dataset in read.answer:
                problems += _check_dataset(states, dataset["DatasetName"], dataset, read)
        else:
            problems += _check_usage(states, read)
    assert not problems, f"{len(problems)} snapshot violations, e.g.:\n" + "\n".join(
        problems[:10])
    return Counter(read.kind for read in history.reads)
