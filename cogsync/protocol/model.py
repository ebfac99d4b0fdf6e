"""The wire contract, loaded from botocore's service model data.

Nothing here is retyped by hand: operations, routes, shapes, constraints and error
statuses all come from the JSON model that ships with botocore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import regex
from botocore.loaders import Loader

SYNC_SERVICE = "cognito-sync"
SYNC_API_VERSION = "2014-06-30"


@dataclass(frozen=True)
class Shape:
    """One shape of the model with the constraints the wire layer enforces."""

    name: str
    type: str
    members: dict[str, Member] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    member_shape: Shape | None = None  # list element
    key_shape: Shape | None = None  # map key
    value_shape: Shape | None = None  # map value
    min: int | None = None
    max: int | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str | None = None
    enum: tuple[str, ...] | None = None
    status: int | None = None  # for error shapes


@dataclass(frozen=True)
class Member:
    name: str
    shape: Shape
    location: str | None  # "uri", "querystring", "header" or None (body)
    location_name: str


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    uri: str
    path_regex: re.Pattern[str]
    path_params: tuple[str, ...]
    input: Shape
    output: Shape | None
    errors: tuple[str, ...]
    unsigned: bool = False  # the model's ``authtype: none`` (GetId, GetCredentialsForIdentity)

    @cached_property
    def path_members(self) -> tuple[str, ...]:
        """The input members the REST form carries in the path."""
        return tuple(n for n, m in self.input.members.items() if m.location == "uri")


@dataclass(frozen=True)
class ServiceModel:
    name: str
    target_prefix: str | None
    operations: dict[str, Operation]
    shapes: dict[str, Shape]

    def error_status(self, code: str) -> int | None:
        shape = self.shapes.get(code)
        return shape.status if shape is not None else None


def compile_pattern(text: str) -> re.Pattern[str]:
    """Model patterns are Java regexes: ``\\w`` is ASCII there, and some use ``\\p{L}``
    classes, which only the ``regex`` module knows."""
    try:
        return re.compile(text, re.ASCII)
    except re.error:
        return regex.compile(text)  # type: ignore[return-value]


def _uri_to_regex(uri: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    path = uri.split("?", 1)[0]
    names: list[str] = []
    parts: list[str] = []
    for segment in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)\+?\}", segment)
        if m:
            names.append(m.group(1))
            parts.append(f"(?P<{m.group(1)}>[^/]*)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "/?$"), tuple(names)


def _build_shapes(raw: dict[str, Any]) -> dict[str, Shape]:
    built: dict[str, Shape] = {}

    def build(name: str) -> Shape:
        if name in built:
            return built[name]
        spec = raw[name]
        pattern_text = spec.get("pattern")
        shape = Shape(
            name=name,
            type=spec["type"],
            required=frozenset(spec.get("required", ())),
            min=spec.get("min"),
            max=spec.get("max"),
            pattern=compile_pattern(pattern_text) if pattern_text else None,
            pattern_text=pattern_text,
            enum=tuple(spec["enum"]) if "enum" in spec else None,
            status=spec.get("error", {}).get("httpStatusCode"),
        )
        built[name] = shape  # registered before children, so recursion terminates
        if shape.type == "structure":
            for mname, mspec in spec.get("members", {}).items():
                shape.members[mname] = Member(
                    name=mname,
                    shape=build(mspec["shape"]),
                    location=mspec.get("location"),
                    location_name=mspec.get("locationName", mname),
                )
        elif shape.type == "list":
            object.__setattr__(shape, "member_shape", build(spec["member"]["shape"]))
        elif shape.type == "map":
            object.__setattr__(shape, "key_shape", build(spec["key"]["shape"]))
            object.__setattr__(shape, "value_shape", build(spec["value"]["shape"]))
        return shape

    for shape_name in raw:
        build(shape_name)
    return built


def build_service_model(raw: dict[str, Any]) -> ServiceModel:
    shapes = _build_shapes(raw["shapes"])
    operations: dict[str, Operation] = {}
    empty = Shape(name="Empty", type="structure")
    for name, spec in raw["operations"].items():
        http = spec.get("http", {"method": "POST", "requestUri": "/"})
        regex, params = _uri_to_regex(http["requestUri"])
        operations[name] = Operation(
            name=name,
            method=http["method"],
            uri=http["requestUri"],
            path_regex=regex,
            path_params=params,
            input=shapes[spec["input"]["shape"]] if "input" in spec else empty,
            output=shapes[spec["output"]["shape"]] if "output" in spec else None,
            errors=tuple(e["shape"] for e in spec.get("errors", ())),
            unsigned=spec.get("authtype") == "none",
        )
    return ServiceModel(
        name=raw["metadata"]["endpointPrefix"],
        target_prefix=raw["metadata"].get("targetPrefix"),
        operations=operations,
        shapes=shapes,
    )


@cache
def load_service_model(service: str, api_version: str) -> ServiceModel:
    raw = Loader().load_service_model(service, "service-2", api_version)
    return build_service_model(raw)


def sync_model() -> ServiceModel:
    return load_service_model(SYNC_SERVICE, SYNC_API_VERSION)


IDENTITY_SERVICE = "cognito-identity"
IDENTITY_API_VERSION = "2014-06-30"


def identity_model() -> ServiceModel:
    return load_service_model(IDENTITY_SERVICE, IDENTITY_API_VERSION)
