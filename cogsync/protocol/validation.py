"""Validation of input values against model shapes.

Two passes share one contract. :func:`validate` runs a checker compiled once per shape
(plain closures, no messages, no paths): the cost on a valid request. Only when that
checker refuses the input does :class:`Validator` walk it again to collect every problem
in AWS's wording ("1 validation error detected: Value ... at ... failed to satisfy
constraint: ..."), so clients and people see what they would see from AWS.
"""

from __future__ import annotations

import reprlib
import threading
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


# --- the generated fast pass -----------------------------------------------------------


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
        with _generating:
            found = _compiled.get(id(shape)) or _Generator().checker(shape)
    return found


def _timestamp_seconds(value: Any) -> float:
    seconds = _seconds(value)
    if seconds is None or not 0 <= seconds < _LATEST_TIMESTAMP:
        raise Refused
    return seconds


def _refuse(value: Any) -> Any:
    raise Refused


class _Generator:
    """Writes one Python function per structure, list and map shape, with the checks of
    its scalar members inline: exactly the constraints the model gives, nothing walked
    at run time. Exact types (``x.__class__ is str``): the JSON parser and the text
    members give nothing else, and whatever is refused here goes to :class:`Validator`,
    which decides. Functions call each other by name, so recursive shapes work."""

    namespace: dict[str, Any] = {"Refused": Refused, "_ts": _timestamp_seconds,
                                 "_refuse": _refuse}

    def __init__(self) -> None:
        self.source: list[str] = []
        self.pending: list[Shape] = []

    def checker(self, shape: Shape) -> Check:
        name = self._function(shape)
        while self.pending:
            self._write(self.pending.pop())
        exec(compile("\n".join(self.source), f"<validation of {shape.name}>", "exec"),
             self.namespace)
        for sid, fname in list(_names.items()):
            _compiled.setdefault(sid, self.namespace[fname])
        return self.namespace[name]  # type: ignore[no-any-return]

    def _function(self, shape: Shape) -> str:
        """The name of the function that checks (and converts) ``shape``."""
        name = _names.get(id(shape))
        if name is None:
            name = _names[id(shape)] = f"check_{len(_names)}_{shape.name}"
            self.pending.append(shape)
        return name

    def _constant(self, value: Any) -> str:
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def _refusal(self, shape: Shape, x: str) -> str | None:
        """A condition true when the scalar ``x`` breaks ``shape``; None if ``shape``
        needs a function (it converts its value, or holds others)."""
        kind = shape.type
        if kind == "string":
            parts = [f"{x}.__class__ is not str"]
            low, high = shape.min or 0, shape.max
            if low and high is not None:
                parts.append(f"not {low} <= len({x}) <= {high}")
            elif low:
                parts.append(f"len({x}) < {low}")
            elif high is not None:
                parts.append(f"len({x}) > {high}")
            if shape.pattern is not None:
                parts.append(f"{self._constant(shape.pattern.fullmatch)}({x}) is None")
            if shape.enum is not None:
                parts.append(f"{x} not in {self._constant(frozenset(shape.enum))}")
            return " or ".join(parts)
        if kind in ("integer", "long"):
            low = -(2**63) if shape.min is None else max(shape.min, -(2**63))
            high = 2**63 - 1 if shape.max is None else min(shape.max, 2**63 - 1)
            return f"{x}.__class__ is not int or not {low} <= {x} <= {high}"
        if kind == "boolean":
            return f"{x}.__class__ is not bool"
        return None

    def _converter(self, shape: Shape) -> str:
        """A call converting a non-scalar value: ``name(x)`` raises Refused."""
        if shape.type == "timestamp":
            return "_ts"
        if shape.type in ("structure", "list", "map"):
            return self._function(shape)
        return "_refuse"

    def _check_into(self, shape: Shape, x: str, target: str, indent: str) -> list[str]:
        if shape.type == "timestamp":  # epoch seconds inline; text goes through _ts
            return [f"{indent}if {x}.__class__ is float and 0 <= {x} < {_LATEST_TIMESTAMP}:",
                    f"{indent}    {target} = {x}",
                    f"{indent}else:",
                    f"{indent}    {target} = _ts({x})"]
        refusal = self._refusal(shape, x)
        if refusal is not None:
            return [f"{indent}if {refusal}:", f"{indent}    raise Refused",
                    f"{indent}{target} = {x}"]
        return [f"{indent}{target} = {self._converter(shape)}({x})"]

    def _count(self, shape: Shape, x: str) -> str:
        low, high = shape.min or 0, shape.max
        if high is not None:
            return f" or not {low} <= len({x}) <= {high}"
        return f" or len({x}) < {low}" if low else ""

    def _write(self, shape: Shape) -> None:
        lines = [f"def {_names[id(shape)]}(value):"]
        if shape.type == "structure":
            lines += ["    if value.__class__ is not dict:", "        raise Refused",
                      "    out = {}", "    get = value.get"]
            for name, member in shape.members.items():
                lines.append(f"    x = get({name!r})")
                if name in shape.required:
                    lines += ["    if x is None:", "        raise Refused"]
                    lines += self._check_into(member.shape, "x", f"out[{name!r}]", "    ")
                else:
                    lines.append("    if x is not None:")
                    lines += self._check_into(member.shape, "x", f"out[{name!r}]", "        ")
            lines.append("    return out")
        elif shape.type == "list":
            assert shape.member_shape is not None
            lines += [f"    if value.__class__ is not list{self._count(shape, 'value')}:",
                      "        raise Refused"]
            refusal = self._refusal(shape.member_shape, "x")
            if refusal is not None:
                lines += ["    for x in value:", f"        if {refusal}:",
                          "            raise Refused", "    return list(value)"]
            else:
                convert = self._converter(shape.member_shape)
                lines.append(f"    return [{convert}(x) for x in value]")
        elif shape.type == "map":
            assert shape.key_shape is not None and shape.value_shape is not None
            lines += [f"    if value.__class__ is not dict{self._count(shape, 'value')}:",
                      "        raise Refused", "    out = {}", "    for k, v in value.items():"]
            lines += self._check_into(shape.key_shape, "k", "key", "        ")
            lines += ["        if v is None:", "            out[key] = None", "        else:"]
            lines += self._check_into(shape.value_shape, "v", "out[key]", "            ")
            lines.append("    return out")
        else:
            refusal = self._refusal(shape, "value")
            if refusal is None:
                lines.append(f"    return {self._converter(shape)}(value)")
            else:
                lines += [f"    if {refusal}:", "        raise Refused", "    return value"]
        self.source.extend(lines)


_names: dict[int, str] = {}  # shape id -> the name of its generated function
_generating = threading.Lock()
