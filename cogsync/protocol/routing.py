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
        refuse_unnormalized(path)
        for op in self._by_method.get(request.method, ()):
            m = op.path_regex.match(path)
            if m:
                params = {k: unquote(v) if "%" in v else v for k, v in m.groupdict().items()}
                return Route(op, params, json_form=False)
        raise UnknownOperation(f"No operation matches {request.method} {request.raw_path}")


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
    params = validate(shape, raw)
    for name in route.operation.path_members:
        if params.get(name) in DOT_NAMES:
            raise InvalidParameter(
                f"{name} may not be '{params[name]}': a path segment of that name cannot be "
                "addressed (SigV4 and browsers resolve it as a relative path)"
            )
    return params
