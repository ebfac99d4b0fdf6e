"""AWS's query protocol, as STS speaks it: form-encoded input, XML output and errors.

A request is a query-protocol request when it is sent to ``/`` without an
``X-Amz-Target`` header and either is a form-encoded POST or names an ``Action`` in its
query string: no Cognito Sync (REST-JSON) or Cognito Identity (JSON 1.1) request looks
like that. ``Action`` names the operation and ``Version`` the API version; members are
flattened (``PolicyArns.member.1.arn``), as the model's shapes say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from cogsync.errors import InvalidParameter, ServiceError
from cogsync.protocol.model import Operation, ServiceModel, Shape
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.routing import HttpRequest, text_value
from cogsync.protocol.validation import validate

FORM_TYPE = "application/x-www-form-urlencoded"
XML_TYPE = "text/xml"
MAX_FIELDS = 1000  # form fields in one request


class MissingAction(ServiceError):
    code = "MissingAction"
    status = 400


class InvalidAction(ServiceError):
    code = "InvalidAction"
    status = 400


class MalformedQueryString(ServiceError):
    code = "MalformedQueryString"
    status = 404  # as AWS's list of common errors gives it


class QueryValidationError(ServiceError):
    code = "ValidationError"
    status = 400


def is_query_request(request: HttpRequest) -> bool:
    if request.raw_path not in ("/", "") or "x-amz-target" in request.headers:
        return False
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        return content_type.split(";", 1)[0].strip().lower() == FORM_TYPE
    return request.method == "GET" and request.query_value("Action") is not None


def form_fields(request: HttpRequest) -> dict[str, str]:
    """The query string's and (for a POST) the body's fields; the body wins."""
    fields = dict(request.query)
    if request.method == "POST" and request.body:
        try:
            text = request.body.decode("utf-8")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS,
                errors="strict",
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedQueryString(f"The request body is not a valid form: {exc}") from None
        fields.update(pairs)
    return fields


def operation_of(model: ServiceModel, fields: dict[str, str]) -> Operation:
    action = fields.get("Action")
    if not action:
        raise MissingAction("Missing Action")
    version = fields.get("Version", model.api_version)
    operation = model.operations.get(action)
    if operation is None or version != model.api_version:
        raise InvalidAction(f"Could not find operation {action} for version {version}")
    return operation


# --- input --------------------------------------------------------------------------


def _scalar(shape: Shape, text: str) -> Any:
    return text_value(shape.type, text)  # timestamps stay ISO 8601 text; the validator reads it


def _indexed(fields: dict[str, str], prefix: str) -> list[int]:
    """The n of the ``<prefix>.<n>...`` fields, in order."""
    found: set[int] = set()
    for key in fields:
        if key.startswith(prefix):
            head = key[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _value(shape: Shape, fields: dict[str, str], key: str) -> tuple[bool, Any]:
    """(present, value) of the member flattened under ``key``."""
    if shape.type == "structure":
        nested = key + "."
        if not any(name.startswith(nested) for name in fields):
            return False, None
        return True, _structure(shape, fields, nested)
    if shape.type == "list":
        assert shape.member_shape is not None
        prefix = key + ".member."
        indices = _indexed(fields, prefix)
        if not indices:
            return (True, []) if fields.get(key) == "" else (False, None)
        items = []
        for i in indices:
            present, item = _value(shape.member_shape, fields, f"{prefix}{i}")
            items.append(item if present else None)
        return True, items
    if shape.type == "map":
        assert shape.key_shape is not None and shape.value_shape is not None
        prefix = key + ".entry."
        indices = _indexed(fields, prefix)
        if not indices:
            return False, None
        mapping = {}
        for i in indices:
            map_key = fields.get(f"{prefix}{i}.key")
            if map_key is not None:
                mapping[map_key] = _value(shape.value_shape, fields, f"{prefix}{i}.value")[1]
        return True, mapping
    text = fields.get(key)
    return (False, None) if text is None else (True, _scalar(shape, text))


def _structure(shape: Shape, fields: dict[str, str], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        present, value = _value(member.shape, fields, prefix + member.location_name)
        if present:
            out[name] = value
    return out


def build_query_input(operation: Operation, fields: dict[str, str]) -> dict[str, Any]:
    """The operation's input from the form fields, validated against its shape."""
    try:
        return validate(operation.input, _structure(operation.input, fields, ""))
    except InvalidParameter as error:
        raise QueryValidationError(error.message) from None


# --- output -------------------------------------------------------------------------


def _iso8601(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(parent: Element, name: str, shape: Shape, value: Any) -> None:
    element = SubElement(parent, name)
    if shape.type == "structure":
        _write_members(element, shape, value)
    elif shape.type == "list":
        assert shape.member_shape is not None
        for item in value:
            _write(element, "member", shape.member_shape, item)
    elif shape.type == "map":
        assert shape.key_shape is not None and shape.value_shape is not None
        for k, v in value.items():
            entry = SubElement(element, "entry")
            _write(entry, "key", shape.key_shape, k)
            _write(entry, "value", shape.value_shape, v)
    elif shape.type == "timestamp":
        element.text = _iso8601(float(value))
    elif shape.type == "boolean":
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


def _write_members(element: Element, shape: Shape, values: dict[str, Any]) -> None:
    for name, member in shape.members.items():
        value = values.get(name)
        if value is not None:
            _write(element, member.location_name, member.shape, value)


def render_query_result(
    model: ServiceModel, operation: Operation, result: dict[str, Any], request_id: str
) -> HttpResponse:
    root = Element(f"{operation.name}Response", xmlns=model.xml_namespace or "")
    wrapper = SubElement(root, operation.result_wrapper or f"{operation.name}Result")
    if operation.output is not None:
        _write_members(wrapper, operation.output, result)
    metadata = SubElement(root, "ResponseMetadata")
    SubElement(metadata, "RequestId").text = request_id
    return HttpResponse(200, tostring(root, encoding="utf-8"), content_type=XML_TYPE)


def render_query_error(error: ServiceError, model: ServiceModel, request_id: str) -> HttpResponse:
    status = error.status or model.error_status(error.code) or 400
    root = Element("ErrorResponse", xmlns=model.xml_namespace or "")
    body = SubElement(root, "Error")
    SubElement(body, "Type").text = "Receiver" if status >= 500 else "Sender"
    SubElement(body, "Code").text = error.code
    SubElement(body, "Message").text = error.message
    SubElement(root, "RequestId").text = request_id
    return HttpResponse(status, tostring(root, encoding="utf-8"), content_type=XML_TYPE)
