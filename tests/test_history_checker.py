"""The history checker itself: it must reject histories that lost or doubled a write."""

from __future__ import annotations

import pytest

from tests.history import Event, History, check


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
