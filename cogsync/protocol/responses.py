"""Rendering results and errors the way AWS's REST-JSON services do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cogsync.errors import ServiceError
from cogsync.protocol.model import ServiceModel


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def render_result(result: dict[str, Any] | None) -> HttpResponse:
    """Members left as None are omitted; timestamps are already epoch seconds."""
    body = orjson.dumps(_drop_none(result or {}))
    return HttpResponse(200, body)


def render_error(error: ServiceError, model: ServiceModel) -> HttpResponse:
    status = error.status or model.error_status(error.code) or 400
    body = orjson.dumps({"__type": error.code, "message": error.message})
    return HttpResponse(status, body, (("x-amzn-errortype", error.code),))
