"""The shortcuts in SigV4 verification give what the general rules give."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogsync.auth.sigv4 import _canonical_uri, _normalized_uri, _signed_at
from cogsync.errors import IncompleteSignature
from tests.server import independent_of_backend

pytestmark = independent_of_backend


PATH_CHARS = st.sampled_from(list("abcXYZ019/._-~%:+ é?") + ["%3A", "..", "//", "/./"])


@given(st.lists(PATH_CHARS, max_size=30).map(lambda parts: "/" + "".join(parts)))
def test_canonical_uri_shortcut_matches_the_general_rules(path: str) -> None:
    assert _canonical_uri(path) == _normalized_uri(path)


def test_sdk_paths_take_the_shortcut_and_are_quoted_once_more() -> None:
    path = "/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/my.data-set_1"
    assert _canonical_uri(path) == path.replace("%3A", "%253A")


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_signed_at_reads_iso_8601_basic(when: datetime) -> None:
    text = when.strftime("%Y%m%dT%H%M%SZ")
    expected = calendar.timegm(datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC).timetuple())
    assert _signed_at(text) == expected


@pytest.mark.parametrize("text", ["20240230T000000Z", "20241301T000000Z", "20240101T250000Z",
                                  "2024010T000000Z", "20240101T000000", "2024-01-01T00:00:00Z",
                                  "٢٠٢٤0101T000000Z", ""])
def test_signed_at_refuses_what_is_not_a_date(text: str) -> None:
    with pytest.raises(IncompleteSignature):
        _signed_at(text)
