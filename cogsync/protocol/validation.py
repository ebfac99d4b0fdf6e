"""Validation of input values against model shapes.

Two passes share one contract. :func:`validate` runs a checker compiled once per shape
(plain closures, no messages, no paths): the cost on a valid request. Only when that
checker refuses the input does :class:`Validator` walk it again to collect every problem
in AWS's wording ("1 validation error detected: Value ... at ... failed to satisfy
constraint: ..."), so clients and people see what they would see from AWS.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cogsync.errors import InvalidParameter
from cogsync.protocol.model import Shape

_MAX_SHOWN = 64
_LATEST_TIMESTAMP = 253402300800  # 10000-01-01T00:00:00Z

# Bounded repr: a deeply nested JSON value (orjson allows 1024 levels) would otherwise
# exhaust the interpreter's recursion limit inside repr().
_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = _repr.maxlong = _repr.maxother = _MAX_SHOWN


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else _repr.repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


class Validator:
    """Collects every problem of one input, then raises them together."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, value: Any, where: str, constraint: str) -> None:
        self.problems.append(
            f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: {constraint}"
        )

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        n = len(self.problems)
        noun = "error" if n == 1 else "errors"
        raise InvalidParameter(f"{n} validation {noun} detected: " + "; ".join(self.problems))

    def check(self, shape: Shape, value: Any, where: str) -> Any:
        """Returns the value converted to its Python form (timestamps become floats)."""
        kind = shape.type
        if kind == "string":
            return self._string(shape, value, where)
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(value, where, "Member must be an integer")
                return None
            if not -(2**63) <= value < 2**63:
                self.fail(value, where, "Member must be a 64-bit integer")
            if shape.min is not None and value < shape.min:
                self.fail(
                    value, where, f"Member must have value greater than or equal to {shape.min}"
                )
            if shape.max is not None and value > shape.max:
                self.fail(value, where, f"Member must have value less than or equal to {shape.max}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(value, where, "Member must be a boolean")
            return value
        if kind == "timestamp":
            return self._timestamp(value, where)
        if kind == "structure":
            return self.structure(shape, value, where)
        if kind == "list":
            return self._list(shape, value, where)
        if kind == "map":
            return self._map(shape, value, where)
        self.fail(value, where, f"Unsupported type {kind}")
        return None

    def structure(self, shape: Shape, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(value, where or "body", "Member must be an object")
            return None
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            child = f"{where}.{_lower_first(name)}" if where else _lower_first(name)
            if name not in value or value[name] is None:
                if name in shape.required:
                    self.fail(None, child, "Member must not be null")
                continue
            out[name] = self.check(member.shape, value[name], child)
        return out

    def _string(self, shape: Shape, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            self.fail(value, where, "Member must be a string")
            return None
        if shape.min is not None and len(value) < shape.min:
            self.fail(value, where, f"Member must have length greater than or equal to {shape.min}")
        if shape.max is not None and len(value) > shape.max:
            self.fail(value, where, f"Member must have length less than or equal to {shape.max}")
        if shape.pattern is not None and not shape.pattern.fullmatch(value):
            constraint = f"Member must satisfy regular expression pattern: {shape.pattern_text}"
            self.fail(value, where, constraint)
        if shape.enum is not None and value not in shape.enum:
            allowed = ", ".join(shape.enum)
            self.fail(value, where, f"Member must satisfy enum value set: [{allowed}]")
        return value

    def _timestamp(self, value: Any, where: str) -> float | None:
        seconds = _seconds(value)
        if seconds is None:
            self.fail(value, where, "Member must be a timestamp")
            return None
        if not 0 <= seconds < _LATEST_TIMESTAMP:
            self.fail(value, where, "Member must be a timestamp between 1970 and 9999")
            return None
        return seconds

    def _list(self, shape: Shape, value: Any, where: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.fail(value, where, "Member must be a list")
            return None
        self._count(shape, len(value), value, where)
        assert shape.member_shape is not None
        return [
            self.check(shape.member_shape, v, f"{where}.{i + 1}.member")
            for i, v in enumerate(value)
        ]

    def _map(self, shape: Shape, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(value, where, "Member must be a map")
            return None
        self._count(shape, len(value), value, where)
        assert shape.key_shape is not None and shape.value_shape is not None
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = self.check(shape.key_shape, k, f"{where}.key")
            out[key] = None if v is None else self.check(shape.value_shape, v, f"{where}.{k}")
        return out

    def _count(self, shape: Shape, n: int, value: Any, where: str) -> None:
        if shape.min is not None and n < shape.min:
            self.fail(value, where, f"Member must have length greater than or equal to {shape.min}")
        if shape.max is not None and n > shape.max:
            self.fail(value, where, f"Member must have length less than or equal to {shape.max}")


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _seconds(value: Any) -> float | None:
    """A timestamp member as epoch seconds: a JSON number, or ISO 8601 text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        # No offset means UTC, not the server's local time zone.
        try:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            return None
    return None


# --- the compiled fast pass -----------------------------------------------------------


class Refused(Exception):
    """The fast pass found a problem; :class:`Validator` will say which."""


Check = Callable[[Any], Any]
_compiled: dict[int, Check] = {}


def validate(shape: Shape, value: Any) -> dict[str, Any]:
    """The input converted to its Python form, or InvalidParameter with every problem."""
    try:
        return _checker(shape)(value)  # type: ignore[no-any-return]
    except Refused:
        pass
    validator = Validator()
    result = validator.structure(shape, value, "")
    validator.raise_if_any()
    assert result is not None
    return result


def _checker(shape: Shape) -> Check:
    found = _compiled.get(id(shape))
    if found is None:
        found = _compile(shape)
        _compiled[id(shape)] = found
    return found


def _compile(shape: Shape) -> Check:
    kind = shape.type
    if kind == "string":
        return _compile_string(shape)
    if kind in ("integer", "long"):
        low = -(2**63) if shape.min is None else max(shape.min, -(2**63))
        high = 2**63 - 1 if shape.max is None else min(shape.max, 2**63 - 1)

        def integer(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise Refused
            return value

        return integer
    if kind == "boolean":

        def boolean(value: Any) -> Any:
            if not isinstance(value, bool):
                raise Refused
            return value

        return boolean
    if kind == "timestamp":

        def timestamp(value: Any) -> Any:
            seconds = _seconds(value)
            if seconds is None or not 0 <= seconds < _LATEST_TIMESTAMP:
                raise Refused
            return seconds

        return timestamp
    if kind == "structure":
        return _compile_structure(shape)
    if kind == "list":
        return _compile_list(shape)
    if kind == "map":
        return _compile_map(shape)

    def unsupported(value: Any) -> Any:
        raise Refused

    return unsupported


def _compile_string(shape: Shape) -> Check:
    low = shape.min or 0
    high = shape.max
    pattern = shape.pattern.fullmatch if shape.pattern is not None else None
    enum = frozenset(shape.enum) if shape.enum is not None else None

    def string(value: Any) -> Any:
        if not isinstance(value, str) or len(value) < low:
            raise Refused
        if high is not None and len(value) > high:
            raise Refused
        if pattern is not None and pattern(value) is None:
            raise Refused
        if enum is not None and value not in enum:
            raise Refused
        return value

    return string


def _compile_structure(shape: Shape) -> Check:
    # Member checkers are looked up on first use, not here: shapes may be recursive.
    resolved: list[tuple[str, bool, Check]] | None = None

    def structure(value: Any) -> Any:
        nonlocal resolved
        members = resolved
        if members is None:
            members = resolved = [
                (name, name in shape.required, _checker(member.shape))
                for name, member in shape.members.items()
            ]
        if not isinstance(value, dict):
            raise Refused
        out: dict[str, Any] = {}
        for name, required, check in members:
            item = value.get(name)
            if item is None:
                if required:
                    raise Refused
                continue
            out[name] = check(item)
        return out

    return structure


def _counter(shape: Shape) -> Callable[[int], bool]:
    low = shape.min or 0
    high = shape.max
    return lambda n: n >= low and (high is None or n <= high)


def _compile_list(shape: Shape) -> Check:
    assert shape.member_shape is not None
    member_shape = shape.member_shape
    count_ok = _counter(shape)

    def items(value: Any) -> Any:
        if not isinstance(value, list) or not count_ok(len(value)):
            raise Refused
        check = _checker(member_shape)
        return [check(item) for item in value]

    return items


def _compile_map(shape: Shape) -> Check:
    assert shape.key_shape is not None and shape.value_shape is not None
    key_shape, value_shape = shape.key_shape, shape.value_shape
    count_ok = _counter(shape)

    def mapping(value: Any) -> Any:
        if not isinstance(value, dict) or not count_ok(len(value)):
            raise Refused
        check_key, check_value = _checker(key_shape), _checker(value_shape)
        return {check_key(k): None if v is None else check_value(v) for k, v in value.items()}

    return mapping
