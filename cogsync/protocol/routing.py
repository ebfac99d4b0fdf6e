"""Finding the operation a request names, and building its validated input.

Two forms reach the same operations:
- REST-JSON (what the SDKs send): method + path template, query and header members;
- JSON 1.1 (shown in the API reference examples): ``POST /`` with
  ``X-Amz-Target: <prefix>.<Operation>`` and every member in the JSON body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from cogsync.errors import InvalidParameter, UnknownOperation
from cogsync.protocol.model import Operation, ServiceModel
from cogsync.protocol.validation import validate


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request the protocol and auth layers read."""

    method: str
    raw_path: str  # as sent, still percent-encoded
    query: list[tuple[str, str]]  # decoded pairs, in order
    headers: dict[str, str]  # lower-case names
    body: bytes

    def query_value(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None


@dataclass(frozen=True)
class Route:
    operation: Operation
    path_params: dict[str, str]
    json_form: bool  # True for the X-Amz-Target form


class Router:
    def __init__(self, model: ServiceModel, target_prefixes: tuple[str, ...]):
        self.model = model
        self.target_prefixes = target_prefixes
        by_method: dict[str, list[Operation]] = {}
        for op in model.operations.values():
            by_method.setdefault(op.method, []).append(op)
        # Literal segments beat parameters: longer templates first.
        for ops in by_method.values():
            ops.sort(key=lambda o: (-o.uri.count("/"), o.uri.count("{")))
        self._by_method = by_method

    def target_operation(self, target: str) -> Operation | None:
        prefix, _, name = target.rpartition(".")
        if prefix in self.target_prefixes:
            return self.model.operations.get(name)
        return None

    def match(self, request: HttpRequest) -> Route:
        target = request.headers.get("x-amz-target")
        if target is not None and request.method == "POST" and request.raw_path in ("/", ""):
            op = self.target_operation(target)
            if op is None:
                raise UnknownOperation(f"Unknown operation {target}")
            return Route(op, {}, json_form=True)
        path = request.raw_path
        for op in self._by_method.get(request.method, ()):
            m = op.path_regex.match(path)
            if m:
                params = {k: unquote(v) if "%" in v else v for k, v in m.groupdict().items()}
                return Route(op, params, json_form=False)
        raise UnknownOperation(f"No operation matches {request.method} {request.raw_path}")


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameter(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidParameter("The request body must be a JSON object")
    return value


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def text_value(kind: str, text: str) -> Any:
    """Query-string and header members arrive as text; give them their model type."""
    if kind in ("integer", "long"):
        # Only plain ASCII digits: int() would also take "1_000", " 7 " and non-ASCII digits.
        if _INTEGER_TEXT.fullmatch(text):
            return int(text)
        return text  # the validator reports it with the offending value
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def build_input(route: Route, request: HttpRequest) -> dict[str, Any]:
    """Gathers the members from wherever the model places them, then validates them."""
    shape = route.operation.input
    body = _parse_body(request.body)
    raw: dict[str, Any] = {}
    if route.json_form:
        raw = body
    else:
        for name, member in shape.members.items():
            if member.location == "uri":
                raw[name] = route.path_params.get(member.location_name)
            elif member.location == "querystring":
                text = request.query_value(member.location_name)
                if text is not None:
                    raw[name] = text_value(member.shape.type, text)
            elif member.location == "header":
                text = request.headers.get(member.location_name.lower())
                if text is not None:
                    raw[name] = text_value(member.shape.type, text)
            elif name in body:
                raw[name] = body[name]
    return validate(shape, raw)
