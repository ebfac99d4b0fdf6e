"""Injected faults: the next N calls of an operation answer an AWS error, or wait first.

A fault names one operation of Cognito Sync or Cognito Identity and, optionally, the
pool, identity and dataset it applies to. Each matching call takes one of its N uses:
it waits ``DelaySeconds``, then answers the error (with the status the service model
gives it) or, without an error, goes on as usual. Faults are tried in the order they
were added; a used-up fault stays listed until the faults are cleared.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from cogsync.errors import InternalError, InvalidParameter, LimitExceeded, ServiceError
from cogsync.protocol.model import ServiceModel

MAX_FAULTS = 1000
MAX_COUNT = 1_000_000
MAX_DELAY_SECONDS = 300.0
FILTERS = ("IdentityPoolId", "IdentityId", "DatasetName")


@dataclass
class Fault:
    fault_id: str
    service: str
    operation: str
    error: str | None
    status: int | None
    message: str
    delay: float
    count: int
    filters: dict[str, str]
    remaining: int
    hits: int = 0

    def matches(self, service: str, operation: str, where: dict[str, str | None]) -> bool:
        return (
            self.remaining > 0
            and self.operation == operation
            and self.service == service
            and all(where.get(name) == value for name, value in self.filters.items())
        )

    def raise_error(self) -> None:
        if self.error == InternalError.code:
            raise InternalError(self.message)
        if self.error is not None:
            raise ServiceError(self.message, code=self.error, status=self.status)

    def describe(self) -> dict[str, Any]:
        return {
            "FaultId": self.fault_id,
            "Service": self.service,
            "Operation": self.operation,
            "Error": self.error,
            "Status": self.status,
            "Message": self.message if self.error else None,
            "DelaySeconds": self.delay,
            "Count": self.count,
            "Remaining": self.remaining,
            "Hits": self.hits,
            **self.filters,
        }


class FaultBook:
    """The faults of one server process (the event loop's thread adds and takes them;
    the lock keeps that true if another thread ever does)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._faults)

    def add(self, fault: Fault) -> None:
        with self._lock:
            if len(self._faults) >= MAX_FAULTS:
                raise LimitExceeded(
                    f"This server holds {MAX_FAULTS} faults already: clear them first "
                    "(DELETE /_cogsync/test/faults)"
                )
            self._faults.append(fault)

    def take(self, service: str, operation: str, where: dict[str, str | None]) -> Fault | None:
        """The first fault this call matches, with one of its uses taken."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(service, operation, where):
                    fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def clear(self) -> int:
        with self._lock:
            cleared, self._faults = len(self._faults), []
        return cleared


def _error_code(given: Any) -> str:
    """The AWS error code, from its full name or without ``Exception``."""
    if not isinstance(given, str) or not given:
        raise InvalidParameter("Error must be an AWS error code, such as TooManyRequestsException")
    return given if given.endswith("Exception") else given + "Exception"


def parse_fault(body: dict[str, Any], models: dict[str, ServiceModel]) -> Fault:
    """A fault from the JSON a client sent; InvalidParameter naming what is wrong."""
    known = {"Operation", "Error", "Message", "Status", "Count", "DelaySeconds", *FILTERS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidParameter(f"Unknown member(s): {', '.join(unknown)}; known: "
                               + ", ".join(sorted(known)))
    operation = body.get("Operation")
    model = next((m for m in models.values() if operation in m.operations), None)
    if model is None:
        raise InvalidParameter(
            f"Operation must name a Cognito Sync or Cognito Identity operation, not {operation!r}"
        )
    error: str | None = None
    status = body.get("Status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise InvalidParameter("Status must be an HTTP error status, 400 to 599")
    if body.get("Error") is not None:
        error = _error_code(body["Error"])
        declared = {name for op in model.operations.values() for name in op.errors}
        if error not in declared and status is None:
            raise InvalidParameter(
                f"{error} is not an error of {model.name}: give its Status too, or one of "
                + ", ".join(sorted(declared))
            )
        if status is None:
            status = model.error_status(error) or (500 if error == InternalError.code else 400)
    delay = body.get("DelaySeconds", 0)
    if (not isinstance(delay, int | float) or isinstance(delay, bool)
            or not 0 <= delay <= MAX_DELAY_SECONDS):
        raise InvalidParameter(f"DelaySeconds must be a number from 0 to {MAX_DELAY_SECONDS:g}")
    if error is None and not delay:
        raise InvalidParameter("A fault needs an Error, a DelaySeconds, or both")
    count = body.get("Count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise InvalidParameter(f"Count must be a whole number from 1 to {MAX_COUNT}")
    message = body.get("Message")
    if message is not None and not isinstance(message, str):
        raise InvalidParameter("Message must be a string")
    filters = {}
    for name in FILTERS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidParameter(f"{name} must be a non-empty string")
            filters[name] = value
    return Fault(
        fault_id=uuid.uuid4().hex,
        service=model.name,
        operation=operation,
        error=error,
        status=status if error else None,
        message=message or f"{error} (injected by the test controls)",
        delay=float(delay),
        count=count,
        filters=filters,
        remaining=count,
    )
