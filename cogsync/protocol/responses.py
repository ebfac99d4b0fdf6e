"""Rendering results and errors the way AWS's REST-JSON services do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cogsync.errors import ServiceError
from cogsync.protocol.model import ServiceModel


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


def present(members: dict[str, Any]) -> dict[str, Any]:
    """The members that have a value: absent members are left out, never sent as null."""
    return {k: v for k, v in members.items() if v is not None}


def render_result(result: dict[str, Any] | None) -> HttpResponse:
    """Top-level members left as None are omitted (nested structures are built with
    :func:`present`); timestamps are already epoch seconds."""
    body = orjson.dumps(present(result or {}))
    return HttpResponse(200, body)


def render_error(error: ServiceError, model: ServiceModel) -> HttpResponse:
    status = error.status or model.error_status(error.code) or 400
    body = orjson.dumps({"__type": error.code, "message": error.message})
    return HttpResponse(status, body, (("x-amzn-errortype", error.code),))
