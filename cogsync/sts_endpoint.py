"""The STS endpoint on cogsync's port: query-protocol requests in, XML out.

The app hands a request here when :func:`is_query_request` says it is one; everything
about it, errors included, is answered in the query protocol's shapes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.errors import ServiceError
from cogsync.identity.sts_operations import HANDLERS
from cogsync.identity.web_identity import WebIdentityService
from cogsync.protocol.model import STS_SERVICE, sts_model
from cogsync.protocol.query import (
    InvalidAction,
    build_query_input,
    form_fields,
    operation_of,
    render_query_error,
    render_query_result,
)
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.routing import HttpRequest
from cogsync.request_log import current as current_request

log = logging.getLogger("cogsync")

Authenticate = Callable[[HttpRequest, str], Awaitable[Caller]]
Run = Callable[..., Awaitable[Any]]

# The signature errors under the codes STS gives them (the JSON services' names differ).
_STS_CODES = {
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "ExpiredTokenException": ("ExpiredToken", 400),
}


class StsEndpoint:
    def __init__(self, service: WebIdentityService, authenticate: Authenticate, run: Run):
        self.service = service
        self.authenticate = authenticate
        self.run = run  # runs a blocking handler off the event loop
        self.model = sts_model()

    async def handle(self, request: HttpRequest, request_id: str) -> HttpResponse:
        info = current_request()
        try:
            fields = form_fields(request)
            operation = operation_of(self.model, fields)
            if info is not None:
                info.operation = operation.name
            handler = HANDLERS.get(operation.name)
            if handler is None:
                raise InvalidAction(
                    f"cogsync serves the STS operations {', '.join(sorted(HANDLERS))}; "
                    f"{operation.name} is not one of them"
                )
            caller = None
            if not operation.unsigned:
                caller = await self._authenticate(request)
            params = build_query_input(operation, fields)
            result = await self.run(handler, self.service, caller, params)
            return render_query_result(self.model, operation, result, request_id)
        except ServiceError as error:
            if info is not None:
                info.error_code = error.code
            return render_query_error(error, self.model, request_id)
        except Exception:
            log.exception("unexpected error in STS request %s", request_id)
            failure = ServiceError("An internal error occurred", code="InternalFailure", status=500)
            if info is not None:
                info.error_code = failure.code
            return render_query_error(failure, self.model, request_id)

    async def _authenticate(self, request: HttpRequest) -> Caller:
        try:
            return await self.authenticate(request, STS_SERVICE)
        except ServiceError as error:
            code, status = _STS_CODES.get(error.code, (error.code, error.status))
            raise ServiceError(error.message, code=code, status=status) from None
