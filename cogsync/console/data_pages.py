"""The console's data pages: pools and their configuration, identities (found by id or
login), an identity's logins and datasets, a dataset's records with search, edit and
delete. Every change goes through the sync service (:class:`cogsync.sync.admin.SyncAdmin`):
an edit is an UpdateRecords with the record's SyncCount as the operator saw it, so a
client's concurrent change is a conflict, not lost, and clients get the edit on their
next sync."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson

from cogsync.auth.caller import Caller
from cogsync.components import Components
from cogsync.console.web import Ctx, Route, route
from cogsync.domain import IdentityPool
from cogsync.errors import InvalidParameter, ResourceConflict, ResourceNotFound, ServiceError
from cogsync.protocol.model import sync_model
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.validation import validate
from cogsync.sync.admin import SyncAdmin
from cogsync.sync.operations import HANDLERS
from cogsync.transfer.identity_export import export_identity

Work = Callable[..., Awaitable[Any]]
IDENTITIES_SHOWN = 100


def visible_pools(c: Components, account_id: str | None) -> list[IdentityPool]:
    with c.store.read() as tx:
        accounts = [account_id] if account_id else [a.account_id for a in tx.list_accounts()]
        return [p for a in accounts for p in tx.list_pools(a, None, 1_000_000)]


class DataPages:
    def __init__(self, components: Components, work: Work):
        self.c = components
        self.admin = SyncAdmin(components.service)
        self.work = work

    def routes(self) -> list[Route]:
        dataset = "/pools/{pool}/identities/{identity}/datasets/{name}"
        return [
            route("GET", "/pools", self.pools),
            route("GET", "/pools/{pool}", self.pool),
            route("POST", "/pools/{pool}/events", self.set_events),
            route("POST", "/pools/{pool}/configuration", self.set_configuration),
            route("GET", "/pools/{pool}/identities/{identity}", self.identity),
            route("POST", "/pools/{pool}/identities/{identity}/erase", self.erase),
            route("GET", "/pools/{pool}/identities/{identity}/export", self.export),
            route("GET", dataset, self.dataset),
            route("POST", dataset + "/records", self.write_record),
            route("POST", dataset + "/delete", self.delete_dataset),
        ]

    async def owner(self, ctx: Ctx, pool_id: str) -> tuple[IdentityPool, Caller]:
        """The pool, if the operator may see it (else not found, as to a stranger)."""
        with_pool = await self.work(self._pool, pool_id)
        assert ctx.operator is not None
        if with_pool is None or not ctx.operator.sees(with_pool.account_id):
            raise ResourceNotFound(f"IdentityPool '{pool_id}' not found")
        return with_pool, Caller(account_id=with_pool.account_id)

    def _pool(self, pool_id: str) -> IdentityPool | None:
        with self.c.store.read() as tx:
            return tx.get_pool(pool_id)

    # --- pools --------------------------------------------------------------------

    async def pools(self, ctx: Ctx) -> HttpResponse:
        assert ctx.operator is not None
        pools = await self.work(visible_pools, self.c, ctx.operator.account_id)
        return ctx.render("pools.html", pools=pools)

    async def pool(self, ctx: Ctx, pool: str) -> HttpResponse:
        found, caller = await self.owner(ctx, pool)
        search = ctx.arg("search")
        identities = await self.work(self.admin.identities, caller, pool, search, None,
                                     IDENTITIES_SHOWN)
        roles = await self.work(self._roles, pool)
        job = await self.work(self.c.service.bulk_publish_details, caller, pool)
        return ctx.render("pool.html", pool=found, identities=identities, search=search,
                          notice=ctx.arg("notice"),
                          shown=IDENTITIES_SHOWN, roles=roles, job=job,
                          pretty=lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode())

    async def _operation(self, caller: Caller, name: str, params: dict[str, Any]) -> None:
        """A sync operation as the API runs it: its input checked against the model,
        then its handler."""
        checked = validate(sync_model().operations[name].input, params)
        await self.work(HANDLERS[name], self.c.service, caller, checked)

    async def set_events(self, ctx: Ctx, pool: str) -> HttpResponse:
        """The pool's Sync Trigger function (SetCognitoEvents); empty: none."""
        _, caller = await self.owner(ctx, pool)
        arn = ctx.form.get("sync_trigger", "").strip()
        await self._operation(caller, "SetCognitoEvents",
                              {"IdentityPoolId": pool, "Events": {"SyncTrigger": arn}})
        return ctx.redirect(f"/pools/{_q(pool)}?notice=events+saved")

    async def set_configuration(self, ctx: Ctx, pool: str) -> HttpResponse:
        """Cognito Streams and push sync (SetIdentityPoolConfiguration)."""
        _, caller = await self.owner(ctx, pool)
        form = {k: v.strip() for k, v in ctx.form.items()}
        streams = {"StreamingStatus": form.get("streaming_status") or "DISABLED"}
        if form.get("stream_name"):
            streams["StreamName"] = form["stream_name"]
        if form.get("stream_role_arn"):
            streams["RoleArn"] = form["stream_role_arn"]
        push: dict[str, Any] = {
            "ApplicationArns": [line.strip() for line in form.get("push_arns", "").splitlines()
                                if line.strip()]}
        if form.get("push_role_arn"):
            push["RoleArn"] = form["push_role_arn"]
        await self._operation(caller, "SetIdentityPoolConfiguration", {
            "IdentityPoolId": pool, "CognitoStreams": streams, "PushSync": push})
        return ctx.redirect(f"/pools/{_q(pool)}?notice=configuration+saved")

    def _roles(self, pool_id: str) -> Any:
        with self.c.store.read() as tx:
            return tx.pool_roles(pool_id)

    # --- identities ---------------------------------------------------------------

    async def identity(self, ctx: Ctx, pool: str, identity: str) -> HttpResponse:
        found, caller = await self.owner(ctx, pool)
        detail = await self.work(self.admin.identity, caller, pool, identity)
        return ctx.render("identity.html", pool=found, detail=detail,
                          notice=ctx.arg("notice"))

    async def erase(self, ctx: Ctx, pool: str, identity: str) -> HttpResponse:
        _, caller = await self.owner(ctx, pool)
        forget = ctx.form.get("forget") == "1"
        erased = await self.work(
            lambda: self.admin.erase(caller, pool, identity, forget=forget))
        if erased.identity_forgotten:
            return ctx.redirect(f"/pools/{_q(pool)}?notice=erased")
        return ctx.redirect(f"/pools/{_q(pool)}/identities/{_q(identity)}?notice=erased")

    async def export(self, ctx: Ctx, pool: str, identity: str) -> HttpResponse:
        _, caller = await self.owner(ctx, pool)
        document = await self.work(export_identity, self.c.service, caller, pool, identity)
        filename = "identity-" + identity.replace(":", "_") + ".json"
        headers = (("content-disposition", f'attachment; filename="{filename}"'),
                   ("cache-control", "no-store"), ("x-content-type-options", "nosniff"))
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        return HttpResponse(200, body, headers)

    # --- datasets and records -----------------------------------------------------

    async def dataset(self, ctx: Ctx, pool: str, identity: str, name: str,
                      problem: str | None = None, status: int = 200) -> HttpResponse:
        found, caller = await self.owner(ctx, pool)
        search = ctx.arg("search")
        dataset, records = await self.work(self.admin.records, caller, pool, identity, name,
                                           search)
        return ctx.render("dataset.html", status=status, pool=found, identity=identity,
                          dataset=dataset, records=records, search=search, problem=problem,
                          notice=ctx.arg("notice"))

    async def write_record(self, ctx: Ctx, pool: str, identity: str, name: str) -> HttpResponse:
        _, caller = await self.owner(ctx, pool)
        key = ctx.form.get("key", "")
        remove = ctx.form.get("action") == "remove"
        value = None if remove else ctx.form.get("value", "")
        expected = ctx.form.get("sync_count", "")
        if expected and not expected.isdigit():
            raise InvalidParameter("The record's SyncCount must be a whole number")
        patch: dict[str, Any] = {"Op": "remove" if remove else "replace", "Key": key,
                                 "SyncCount": int(expected) if expected else 0}
        if value is not None:
            patch["Value"] = value
        # What UpdateRecords would accept (names, patterns, lengths), checked as its
        # model checks it on the wire.
        validate(sync_model().operations["UpdateRecords"].input, {
            "IdentityPoolId": pool, "IdentityId": identity, "DatasetName": name,
            "SyncSessionToken": "console", "RecordPatches": [patch]})
        try:
            written = await self.work(
                self.admin.write_record, caller, pool, identity, name, key, value,
                int(expected) if expected else None)
        except ServiceError as error:
            if isinstance(error, ResourceNotFound):
                raise
            status = error.status or (409 if isinstance(error, ResourceConflict) else 400)
            return await self.dataset(ctx, pool, identity, name, problem=error.message,
                                      status=status)
        where = f"/pools/{_q(pool)}/identities/{_q(identity)}/datasets/{_q(name)}"
        done = "removed" if remove else "saved"
        return ctx.redirect(f"{where}?notice={done}+{_q(written.key)}+at+SyncCount+"
                            f"{written.sync_count}")

    async def delete_dataset(self, ctx: Ctx, pool: str, identity: str,
                             name: str) -> HttpResponse:
        _, caller = await self.owner(ctx, pool)
        await self.work(self.admin.delete_dataset, caller, pool, identity, name)
        where = f"/pools/{_q(pool)}/identities/{_q(identity)}"
        return ctx.redirect(f"{where}?notice=deleted+{_q(name)}")


def _q(value: str) -> str:
    return quote(value, safe="")
