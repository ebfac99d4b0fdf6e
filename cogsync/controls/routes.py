"""The test controls' HTTP side: one hook the HTTP edge calls on each operation, and the
routes under ``/_cogsync/test/``.

    POST   /_cogsync/test/faults            add a fault (see faults.py)
    GET    /_cogsync/test/faults            list the faults, with their uses
    DELETE /_cogsync/test/faults            clear them
    POST   /_cogsync/test/write-records     write as another device
    POST   /_cogsync/test/delete-dataset    delete a dataset
    POST   /_cogsync/test/merge-identities  merge one identity into another
    POST   /_cogsync/test/expire-sessions   expire sync sessions (and credentials)

Requests are JSON, signed (SigV4, service ``cognito-sync``) with a developer key of the
server, or unsigned in open mode. Errors have the AWS shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from cogsync.auth.caller import Caller
from cogsync.auth.sigv4 import parse_signed_request
from cogsync.auth.temporary import EXPIRED
from cogsync.components import Components
from cogsync.controls.expiries import Expiries
from cogsync.controls.faults import FaultBook, parse_fault
from cogsync.controls.moves import merge_identities, write_as_device
from cogsync.errors import ExpiredToken, InvalidParameter, NotAuthorized, ServiceError
from cogsync.protocol.model import SYNC_SERVICE, Member, ServiceModel, Shape
from cogsync.protocol.responses import HttpResponse, render_result
from cogsync.protocol.routing import HttpRequest
from cogsync.protocol.validation import validate
from cogsync.sync.operations import HANDLERS
from cogsync.sync.tokens import SESSION_EXPIRED

CONTROLS_PATH = "/_cogsync/test/"
DEFAULT_DEVICE = "cogsync-test-device"
_DATASET = ("IdentityPoolId", "IdentityId", "DatasetName")
Authenticate = Callable[[HttpRequest, str], Awaitable[Caller]]
StoreWork = Callable[..., Awaitable[Any]]


def controls_off() -> ServiceError:
    return ServiceError(
        "Test controls are off on this server: start it with --test-controls "
        "(COGSYNC_TEST_CONTROLS=1), and never in production",
        code="TestControlsDisabledException",
        status=403,
    )


def _where(params: dict[str, Any], caller: Caller | None) -> dict[str, str | None]:
    return {
        "IdentityPoolId": params.get("IdentityPoolId") or (caller and caller.identity_pool_id),
        "IdentityId": params.get("IdentityId") or (caller and caller.identity_id),
        "DatasetName": params.get("DatasetName"),
    }


class TestControls:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        components: Components,
        models: tuple[ServiceModel, ...],
        authenticate: Authenticate,
        store_work: StoreWork,
    ):
        self.c = components
        self.models = {model.name: model for model in models}
        self.faults = FaultBook()
        self.expiries = Expiries(
            components.service.tokens.session_ttl, components.credentials.lifetime
        )
        self._authenticate = authenticate
        self._store_work = store_work
        self._shapes: dict[tuple[tuple[str, str], ...], Shape] = {}
        self._routes: dict[tuple[str, str], Callable[..., Awaitable[Any]]] = {
            ("POST", "faults"): self._add_fault,
            ("GET", "faults"): self._list_faults,
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "write-records"): self._write_records,
            ("POST", "delete-dataset"): self._delete_dataset,
            ("POST", "merge-identities"): self._merge_identities,
            ("POST", "expire-sessions"): self._expire_sessions,
        }

    # --- the hook ---------------------------------------------------------------

    async def intercept(
        self,
        service: str,
        operation: str,
        caller: Caller | None,
        params: dict[str, Any],
        request: HttpRequest,
    ) -> None:
        """Before an authorized operation runs: expired sessions are refused, and a
        matching fault waits and raises its error."""
        if self.expiries and service == SYNC_SERVICE:
            self._refuse_expired(caller, params, request)
        if not self.faults:
            return
        fault = self.faults.take(service, operation, _where(params, caller))
        if fault is None:
            return
        if fault.delay:
            await asyncio.sleep(fault.delay)
        fault.raise_error()

    def _refuse_expired(
        self, caller: Caller | None, params: dict[str, Any], request: HttpRequest
    ) -> None:
        if caller is not None and caller.identity_id is not None:
            claim = parse_signed_request(request)
            if claim.security_token is not None:
                identity, _ = self.c.credentials.open(claim.access_key_id, claim.security_token)
                if self.expiries.credentials_expired(identity.identity_id, identity.expiration):
                    raise ExpiredToken(EXPIRED)
        token = params.get("SyncSessionToken")
        if token:
            session = self.c.service.tokens.open_session(
                token, params["IdentityPoolId"], params["IdentityId"], params["DatasetName"]
            )
            if self.expiries.session_expired(session.identity_id, session.expires_at):
                raise InvalidParameter(SESSION_EXPIRED)

    # --- the routes -------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        name = request.raw_path[len(CONTROLS_PATH):]
        route = self._routes.get((request.method, name))
        if route is None:
            if any(path == name for _, path in self._routes):
                allowed = sorted(m for m, path in self._routes if path == name)
                raise ServiceError(f"{request.method} is not allowed here; use "
                                   + " or ".join(allowed), code="MethodNotAllowed", status=405)
            raise ServiceError(
                f"There is no test control at {request.raw_path}; the controls are "
                + ", ".join(sorted({CONTROLS_PATH + path for _, path in self._routes})),
                code="UnknownOperationException",
                status=404,
            )
        caller = await self._authenticate(request, SYNC_SERVICE)
        if not caller.is_developer:
            raise NotAuthorized("The test controls take developer credentials")
        body = self._body(request)
        return render_result(await route(caller, body))

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise InvalidParameter("The request body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidParameter("The request body must be a JSON object")
        return body

    def _checked(self, body: dict[str, Any], members: dict[str, str]) -> dict[str, Any]:
        """``body``'s members, each required and checked as the API checks the input
        member that ``members`` names for it ("Operation.Member"), so that a move takes
        what the API takes."""
        key = tuple(members.items())
        shape = self._shapes.get(key)
        if shape is None:
            operations = self.models[SYNC_SERVICE].operations
            fields = {}
            for name, where in members.items():
                operation, member = where.split(".")
                found = operations[operation].input.members[member]
                fields[name] = Member(name, found.shape, None, name)
            shape = self._shapes[key] = Shape(
                name="TestControl", type="structure", members=fields, required=frozenset(fields)
            )
        return validate(shape, {name: body.get(name) for name in members
                                if body.get(name) is not None})

    async def _add_fault(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        fault = parse_fault(body, self.models)
        self.faults.add(fault)
        return fault.describe()

    async def _list_faults(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        return {"Faults": self.faults.listing()}

    async def _clear_faults(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        return {"Cleared": self.faults.clear()}

    async def _write_records(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        values = body.get("Records")
        if (not isinstance(values, dict) or not values
                or not all(v is None or isinstance(v, str) for v in values.values())):
            raise InvalidParameter(
                'Records must map keys to values, null removing a key: {"theme": "dark"}'
            )
        patches = [{"Op": "replace", "Key": key, "Value": value or "", "SyncCount": 0}
                   for key, value in values.items()]
        checked = self._checked(
            {**body, "DeviceId": body.get("DeviceId", DEFAULT_DEVICE), "RecordPatches": patches},
            {name: f"UpdateRecords.{name}" for name in (*_DATASET, "DeviceId", "RecordPatches")},
        )
        where = (checked["IdentityPoolId"], checked["IdentityId"], checked["DatasetName"])
        result = await self._store_work(
            write_as_device, self.c.service, caller, where, values, checked["DeviceId"]
        )
        await self.c.store.durable()
        return result  # type: ignore[no-any-return]

    async def _delete_dataset(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        params = self._checked(body, {name: f"DeleteDataset.{name}" for name in _DATASET})
        result = await self._store_work(HANDLERS["DeleteDataset"], self.c.service, caller,
                                        params)
        await self.c.store.durable()
        return result  # type: ignore[no-any-return]

    async def _merge_identities(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        checked = self._checked(body, {
            "IdentityPoolId": "ListDatasets.IdentityPoolId",
            "SourceIdentityId": "ListDatasets.IdentityId",
            "DestinationIdentityId": "ListDatasets.IdentityId",
        })
        return await self._store_work(  # type: ignore[no-any-return]
            merge_identities, self.c.identity, caller, checked["IdentityPoolId"],
            checked["SourceIdentityId"], checked["DestinationIdentityId"], blocking=True,
        )

    async def _expire_sessions(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        identity_id = None
        if body.get("IdentityId") is not None:
            identity_id = self._checked(body, {"IdentityId": "ListDatasets.IdentityId"})[
                "IdentityId"]
        credentials = body.get("Credentials", True)
        if not isinstance(credentials, bool):
            raise InvalidParameter("Credentials must be true or false")
        moment = time.time()
        self.expiries.expire(moment, identity_id, credentials)
        if credentials:
            # Credentials tell their issue time to the second only (see expiries.py):
            # answer once any issued from now on is surely after the moment.
            await asyncio.sleep(max(0.0, moment + 1.0 - time.time()))
        return {"ExpiredBefore": moment, "IdentityId": identity_id, "Credentials": credentials}
