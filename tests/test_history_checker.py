"""The history checkers themselves: they must reject histories that lost or doubled a write,
and reads that were no snapshot."""

from __future__ import annotations

import pytest

from tests import snapshot_history
from tests.history import Event, History, check
from tests.server import independent_of_backend

pytestmark = independent_of_backend


def _history(*events: Event) -> History:
    result = History()
    for event in events:
        result.add(event)
    return result


def test_a_correct_history_passes() -> None:
    h = _history(Event(0, "d", "", "a", 1, "ok"), Event(1, "d", "", "b", None, "conflict"),
                 Event(1, "d", "a", "a,b", 2, "ok"))
    assert check(h, {"d": ("a,b", 2)}) == {"d": 2}


def test_a_lost_update_is_caught() -> None:
    # Both writers read "" and both were acknowledged: the second overwrote the first.
    h = _history(Event(0, "d", "", "a", 1, "ok"), Event(1, "d", "", "b", 2, "ok"))
    with pytest.raises(AssertionError, match="stale read"):
        check(h, {"d": ("b", 2)})


def test_a_sync_count_handed_out_twice_is_caught() -> None:
    h = _history(Event(0, "d", "", "a", 1, "ok"), Event(1, "d", "a", "a,b", 1, "ok"))
    with pytest.raises(AssertionError, match="dense"):
        check(h, {"d": ("a,b", 2)})


def test_an_acknowledged_write_missing_at_the_end_is_caught() -> None:
    h = _history(Event(0, "d", "", "a", 1, "ok"), Event(1, "d", "a", "a,b", 2, "ok"))
    with pytest.raises(AssertionError, match="last acknowledged"):
        check(h, {"d": ("a", 2)})


# --- the snapshot checker (tests/snapshot_history.py) -----------------------------------


def _write(count: int, changes: dict[str, str | None], at: float) -> snapshot_history.Write:
    return snapshot_history.Write("d", count, changes, f"dev{count}", at, at + 0.1)


def _listing(count: int, records: list[tuple[str, str | None, int]],
             after: int = 0) -> snapshot_history.Read:
    answer = {"DatasetSyncCount": count, "LastModifiedBy": f"dev{count}", "Records": [
        {"Key": k, "SyncCount": c, **({} if v is None else {"Value": v})}
        for k, v, c in records]}
    return snapshot_history.Read("full" if after == 0 else "delta", "d", 5, 6, answer, after)


def _snapshot_history(*reads: snapshot_history.Read) -> snapshot_history.History:
    # Write 1: a=1, b=1; write 2: a=2, b removed; write 3: c=3.
    return snapshot_history.History(
        writes=[_write(1, {"a": "1", "b": "1"}, 1), _write(2, {"a": "2", "b": None}, 2),
                _write(3, {"c": "3"}, 10)], reads=list(reads))


def test_snapshot_reads_pass() -> None:
    paged = snapshot_history.Read("paged", "d", 5, 6, [
        {"DatasetSyncCount": 2, "Records": [{"Key": "a", "Value": "2", "SyncCount": 2}],
         "NextToken": "t"},
        {"DatasetSyncCount": 2, "Records": [{"Key": "b", "SyncCount": 2}]}])
    described = snapshot_history.Read("describe", "d", 5, 6, {
        "DatasetName": "d", "NumRecords": 1, "DataStorage": 2, "LastModifiedBy": "dev2"})
    usage = snapshot_history.Read("usage", None, 5, 6, {"DataStorage": 2})
    reads = snapshot_history.check(_snapshot_history(
        _listing(2, [("a", "2", 2), ("b", None, 2)]), _listing(2, [("a", "2", 2), ("b", None, 2)],
                                                             after=1),
        _listing(1, [("a", "1", 1), ("b", "1", 1)]), paged, described, usage))
    assert sum(reads.values()) == 6


@pytest.mark.parametrize("read", [
    # The race: the dataset's count read, then a record moved past it.
    _listing(2, [("b", None, 2)]),
    _listing(2, [("a", "1", 1), ("b", None, 2)]),  # a stale version
    _listing(1, [("a", "1", 1), ("b", "1", 1), ("c", "3", 3)]),  # a record from the future
    _listing(2, [("a", "2", 2)], after=1),  # a tombstone left out of a delta
    snapshot_history.Read("paged", "d", 5, 6, [
        {"DatasetSyncCount": 2, "Records": [{"Key": "a", "Value": "2", "SyncCount": 2}]}]),
    snapshot_history.Read("describe", "d", 5, 6, {  # the storage of write 1, device of 2
        "DatasetName": "d", "NumRecords": 2, "DataStorage": 4, "LastModifiedBy": "dev2"}),
    snapshot_history.Read("datasets", None, 5, 6, [{  # write 3 began after the call ended
        "DatasetName": "d", "NumRecords": 2, "DataStorage": 4, "LastModifiedBy": "dev3"}]),
    snapshot_history.Read("usage", None, 5, 6, {"DataStorage": 6}),
], ids=["missing", "stale", "future", "delta", "paged", "describe", "datasets", "usage"])
def test_a_read_that_is_no_snapshot_is_caught(read: snapshot_history.Read) -> None:
    with pytest.raises(AssertionError, match="snapshot violations"):
        snapshot_history.check(_snapshot_history(read))


def test_a_sync_count_missing_from_the_writes_is_caught() -> None:
    history = snapshot_history.History(writes=[_write(1, {"a": "1"}, 1),
                                               _write(3, {"a": "3"}, 2)])
    with pytest.raises(AssertionError, match="not dense"):
        snapshot_history.check(history)
