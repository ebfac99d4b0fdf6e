"""The wire contract, loaded from botocore's service model data.

Nothing here is retyped by hand: operations, routes, shapes, constraints and error
statuses all come from the JSON model that ships with botocore.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import orjson
import regex

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
    error_code: str | None = None  # for error shapes: the code on the wire (query protocol)


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
    result_wrapper: str | None = None  # query protocol: the element around the output

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
    api_version: str = ""
    xml_namespace: str | None = None  # query protocol

    def error_status(self, code: str) -> int | None:
        """The HTTP status of an error, by shape name or by its wire code."""
        shape = self.shapes.get(code) or self._errors_by_code.get(code)
        return shape.status if shape is not None else None

    @cached_property
    def _errors_by_code(self) -> dict[str, Shape]:
        return {s.error_code: s for s in self.shapes.values() if s.error_code is not None}


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
            error_code=spec.get("error", {}).get("code", name) if spec.get("exception") else None,
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
            result_wrapper=spec.get("output", {}).get("resultWrapper"),
        )
    return ServiceModel(
        name=raw["metadata"]["endpointPrefix"],
        target_prefix=raw["metadata"].get("targetPrefix"),
        operations=operations,
        shapes=shapes,
        api_version=raw["metadata"].get("apiVersion", ""),
        xml_namespace=raw["metadata"].get("xmlNamespace"),
    )


@cache
def _model_data(service: str, api_version: str) -> dict[str, Any]:
    """The model's JSON from botocore's data folder, read as a file: importing botocore
    (for its loader) would cost each start of the server a twentieth of a second. If
    the files are not where botocore keeps them today, botocore's loader finds them."""
    spec = importlib.util.find_spec("botocore")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "data" / service / api_version
        if (folder / "service-2.json.gz").is_file():
            with gzip.open(folder / "service-2.json.gz", "rb") as packed:
                return orjson.loads(packed.read())  # type: ignore[no-any-return]
        if (folder / "service-2.json").is_file():
            return orjson.loads((folder / "service-2.json").read_bytes())  # type: ignore[no-any-return]
    from botocore.loaders import Loader

    return Loader().load_service_model(service, "service-2", api_version)  # type: ignore[no-any-return]


@cache
def load_service_model(service: str, api_version: str) -> ServiceModel:
    return build_service_model(_model_data(service, api_version))


def sync_model() -> ServiceModel:
    return load_service_model(SYNC_SERVICE, SYNC_API_VERSION)


IDENTITY_SERVICE = "cognito-identity"
IDENTITY_API_VERSION = "2014-06-30"


def identity_model() -> ServiceModel:
    return load_service_model(IDENTITY_SERVICE, IDENTITY_API_VERSION)


STS_SERVICE = "sts"
STS_API_VERSION = "2011-06-15"


def sts_model() -> ServiceModel:
    return load_service_model(STS_SERVICE, STS_API_VERSION)
