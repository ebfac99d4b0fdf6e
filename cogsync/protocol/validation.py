"""Validation of input values against model shapes.

Messages follow AWS's wording ("1 validation error detected: Value ... at ... failed to
satisfy constraint: ..."), so clients and people see what they would see from AWS.
"""

from __future__ import annotations

import reprlib
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
        if isinstance(value, bool):
            self.fail(value, where, "Member must be a timestamp")
            return None
        seconds: float | None = None
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                # No offset means UTC, not the server's local time zone.
                seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
            except (ValueError, OverflowError):
                pass
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
