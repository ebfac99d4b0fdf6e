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
from cogsync.protocol.numbers import signed
from cogsync.protocol.validation import validate


@dataclass(slots=True)
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


@dataclass(slots=True)
class Route:
    operation: Operation
    path_params: dict[str, str]
    json_form: bool  # True for the X-Amz-Target form


@dataclass(slots=True)
class _Alternative:
    operation: Operation
    groups: tuple[int, ...]  # the match's groups that hold the path parameters, in order


class Router:
    def __init__(self, model: ServiceModel, target_prefixes: tuple[str, ...]):
        self.model = model
        self.target_prefixes = target_prefixes
        by_method: dict[str, list[Operation]] = {}
        for op in model.operations.values():
            by_method.setdefault(op.method, []).append(op)
        # One pattern per method: the templates as alternatives, literal segments before
        # parameters (longer templates first), each alternative a group of its own, so
        # that the group that matched names the operation (``lastgroup``: the outermost
        # group closes last) and the groups inside it hold the path parameters.
        self._by_method: dict[str, tuple[re.Pattern[str], dict[str, _Alternative]]] = {}
        for method, ops in by_method.items():
            ops.sort(key=lambda o: (-o.uri.count("/"), o.uri.count("{")))
            alternatives: dict[str, _Alternative] = {}
            texts: list[str] = []
            group = 1
            for n, op in enumerate(ops):
                inner = op.path_regex.pattern.removeprefix("^").removesuffix("$")
                inner = re.sub(r"\(\?P<\w+>", "(", inner)
                texts.append(f"(?P<op{n}>{inner})")
                alternatives[f"op{n}"] = _Alternative(
                    op, tuple(range(group + 1, group + 1 + len(op.path_params))))
                group += 1 + len(op.path_params)
            self._by_method[method] = (re.compile("(?:" + "|".join(texts) + ")$"),
                                       alternatives)

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
        refuse_unnormalized(path)
        found = self._by_method.get(request.method)
        m = found[0].match(path) if found is not None else None
        if m is None:
            raise UnknownOperation(f"No operation matches {request.method} {request.raw_path}")
        alternative = found[1][m.lastgroup]  # type: ignore[index]
        op = alternative.operation
        params = {}
        for name, group in zip(op.path_params, alternative.groups, strict=True):
            value = m.group(group)
            params[name] = _decoded(value) if "%" in value else value
        return Route(op, params, json_form=False)


def _decoded(segment: str) -> str:
    """A percent-encoded path segment, decoded; the ``:`` of every pool and identity id
    (``%3A``) without urllib's general (and much slower) decoder."""
    if segment.count("%") == segment.count("%3A"):
        return segment.replace("%3A", ":")
    return unquote(segment)


# A "." or ".." segment, as sent or percent-encoded ("%2e", ".%2E"...), or an empty one.
_NOT_NORMAL = re.compile(r"/(?:(?:\.|%2[eE]){1,2})?(?=/|$)")


def refuse_unnormalized(path: str) -> None:
    """Routes only paths that are their own normal form.

    SigV4 signs a path with its dot segments resolved and repeated slashes merged
    (botocore, the JavaScript SDK v3 and the Rust SDK do it on the client side), so
    ``DELETE .../datasets/D/subscriptions/..`` carries a valid signature of
    ``DELETE .../datasets/D``. Routing the one path while verifying the other would let a
    signature act as another operation; routing the normalized path would make
    UnsubscribeFromDataset(D, "..") delete D. Neither: such paths are refused, so the
    operation that runs is always the one the signed path names. (Browsers resolve these
    segments themselves, before signing is even checked.)
    """
    if path != "/" and _NOT_NORMAL.search(path):
        raise InvalidParameter(
            "The request path has an empty, '.' or '..' segment; datasets and devices "
            "named '.' or '..' cannot be addressed"
        )


# Members that travel in the path in the REST form may not be "." or "..", in any form:
# a name that no SDK can address is refused when it would be created.
DOT_NAMES = frozenset((".", ".."))


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


def text_value(kind: str, text: str) -> Any:
    """Query-string and header members arrive as text; give them their model type."""
    if kind in ("integer", "long"):
        number = signed(text)
        return text if number is None else number  # the validator reports the text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


@dataclass(frozen=True)
class _Locations:
    """Where an operation's REST form carries its members other than the body's."""

    uri: tuple[tuple[str, str], ...]  # (member, path parameter)
    query: tuple[tuple[str, str, str], ...]  # (member, query name, type)
    header: tuple[tuple[str, str, str], ...]  # (member, lower-case header name, type)
    located: tuple[str, ...]  # every member above: never taken from the body


_locations: dict[int, _Locations] = {}  # by id() of the operation


def _locations_of(operation: Operation) -> _Locations:
    key = id(operation)
    found = _locations.get(key)
    if found is None:
        members = operation.input.members.items()
        found = _locations[key] = _Locations(
            uri=tuple((n, m.location_name) for n, m in members if m.location == "uri"),
            query=tuple((n, m.location_name, m.shape.type) for n, m in members
                        if m.location == "querystring"),
            header=tuple((n, m.location_name.lower(), m.shape.type) for n, m in members
                         if m.location == "header"),
            located=tuple(n for n, m in members if m.location is not None),
        )
    return found


def build_input(route: Route, request: HttpRequest) -> dict[str, Any]:
    """Gathers the members from wherever the model places them, then validates them."""
    operation = route.operation
    body = _parse_body(request.body)
    if route.json_form:
        raw = body
    else:
        where = _locations_of(operation)
        raw = body  # members the model places elsewhere are not taken from the body
        for name in where.located:
            raw.pop(name, None)
        path = route.path_params
        for name, location_name in where.uri:
            raw[name] = path.get(location_name)
        for name, location_name, kind in where.query:
            text = request.query_value(location_name)
            if text is not None:
                raw[name] = text_value(kind, text)
        headers = request.headers
        for name, location_name, kind in where.header:
            text = headers.get(location_name)
            if text is not None:
                raw[name] = text_value(kind, text)
    params = validate(operation.input, raw)
    for name in operation.path_members:
        if params.get(name) in DOT_NAMES:
            raise InvalidParameter(
                f"{name} may not be '{params[name]}': a path segment of that name cannot be "
                "addressed (SigV4 and browsers resolve it as a relative path)"
            )
    return params
