"""The compiled validation pass agrees with the message-producing one, shape by shape.

For every operation of both service models, Hypothesis builds inputs guided by the input
shape (mostly well-formed, each value sometimes bent across one constraint) and checks
that the fast pass accepts exactly what the full validator accepts, with the same
converted result, and that a refused input gets the full validator's messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogsync.errors import InvalidParameter
from cogsync.protocol.model import Operation, Shape, identity_model, sync_model
from cogsync.protocol.validation import Refused, Validator, _checker, validate
from tests.server import independent_of_backend

pytestmark = independent_of_backend


OPERATIONS: list[Operation] = [
    *sync_model().operations.values(),
    *identity_model().operations.values(),
]

WRONG_TYPE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3),
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                           st.integers(),
                                                                           max_size=2))


def _string(shape: Shape) -> st.SearchStrategy[Any]:
    low, high = shape.min or 0, min(shape.max or 40, 40)
    if shape.enum:
        good: st.SearchStrategy[Any] = st.sampled_from(shape.enum)
    elif shape.pattern_text:
        good = st.from_regex(shape.pattern, fullmatch=True).filter(
            lambda s: low <= len(s) <= (shape.max or 10**9))
    else:
        good = st.text(min_size=low, max_size=max(low, high))
    edges = [st.text(max_size=max(high + 2, 3))]
    if shape.max is not None and shape.max <= 4096:
        longest = shape.max
        edges.append(st.just("a" * (longest + 1)))
        # Still matching the pattern (most end in a repeated class), but one too long.
        edges.append(good.filter(bool).map(lambda s: s + s[-1] * (longest + 1 - len(s))))
    if low:
        edges.append(st.just(""))
    return st.one_of(good, good, good, *edges)


def for_shape(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    kind = shape.type
    if kind == "string":
        value = _string(shape)
    elif kind in ("integer", "long"):
        low = shape.min if shape.min is not None else -(2**63)
        high = shape.max if shape.max is not None else 2**63 - 1
        value = st.one_of(st.integers(low, high), st.integers(low, high),
                          st.integers(low - 2, high + 2), st.just(2**64))
    elif kind == "boolean":
        value = st.booleans()
    elif kind == "timestamp":
        value = st.one_of(st.floats(-10, 2.6e11, allow_nan=False), st.integers(-5, 2**40),
                          st.just("2024-01-02T03:04:05Z"), st.just("2024-01-02T03:04:05"),
                          st.text(max_size=5))
    elif kind == "structure":
        if depth > 3:
            return st.just({})
        members = {name: for_shape(m.shape, depth + 1) for name, m in shape.members.items()}
        value = st.fixed_dictionaries(
            {name: s for name, s in members.items() if name in shape.required},
            optional={name: s for name, s in members.items() if name not in shape.required},
        )
    elif kind == "list":
        assert shape.member_shape is not None
        high = min(shape.max if shape.max is not None else 4, 4)
        value = st.lists(for_shape(shape.member_shape, depth + 1), max_size=high + 1)
    elif kind == "map":
        assert shape.key_shape is not None and shape.value_shape is not None
        value = st.dictionaries(_string(shape.key_shape),
                                st.one_of(st.none(), for_shape(shape.value_shape, depth + 1)),
                                max_size=3)
    else:
        value = WRONG_TYPE
    return st.one_of(value, value, value, value, WRONG_TYPE)


def _full(shape: Shape, value: Any) -> tuple[Any, list[str]]:
    validator = Validator()
    result = validator.structure(shape, value, "")
    return result, validator.problems


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
@given(data=st.data())
def test_fast_pass_agrees_with_full_validator(operation: Operation, data: st.DataObject) -> None:
    shape = operation.input
    value = data.draw(st.one_of(for_shape(shape), st.fixed_dictionaries({})))
    expected, problems = _full(shape, value)
    try:
        fast = _checker(shape)(value)
    except Refused:
        assert problems, f"the fast pass refused an input the validator accepts: {value!r}"
        with pytest.raises(InvalidParameter) as refused:
            validate(shape, value)
        assert all(problem in refused.value.message for problem in problems)
        return
    assert not problems, f"the fast pass accepted an input with problems: {problems}"
    assert fast == expected
    assert validate(shape, value) == expected


def test_refusals_name_each_problem() -> None:
    shape = sync_model().operations["UpdateRecords"].input
    value = {"IdentityPoolId": "bad pool", "IdentityId": "us-east-1:ab", "DatasetName": "d",
             "SyncSessionToken": "t", "RecordPatches": [{"Op": "swap", "Key": "k",
                                                          "SyncCount": "1"}]}
    with pytest.raises(InvalidParameter) as refused:
        validate(shape, value)
    message = refused.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "'identityPoolId' failed to satisfy constraint: Member must satisfy regular" in message
    assert "'recordPatches.1.member.op' failed to satisfy constraint: Member must satisfy " \
           "enum value set: [replace, remove]" in message
    assert "'recordPatches.1.member.syncCount' failed to satisfy constraint: Member must be " \
           "an integer" in message
