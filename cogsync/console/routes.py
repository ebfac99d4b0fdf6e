"""The web console under ``/_cogsync/console``: sign-in, the routes, and the pages for
accounts and keys, the outbox and its dead letters, bulk publish jobs and request
rates. The data pages are in :mod:`cogsync.console.data_pages`.

The HTTP edge hands each request under the console's path to :meth:`Console.handle`
(only when the server runs with ``--console``); blocking store work runs on the edge's
thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.components import Components
from cogsync.console.data_pages import DataPages, visible_pools
from cogsync.console.rates import RequestRates
from cogsync.console.sessions import LOGIN_COOKIE, Sessions
from cogsync.console.web import Ctx, Route, match, parse_form, route, static_file
from cogsync.errors import ResourceNotFound, ServiceError
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.routing import HttpRequest

log = logging.getLogger("cogsync.console")
CONSOLE_PATH = "/_cogsync/console"
FAILED_LOGIN_PAUSE = 0.5  # seconds before a refused login is answered
OUTBOX_SHOWN = 200
Work = Callable[..., Awaitable[Any]]


class Console:
    def __init__(self, components: Components, work: Work, wake_dispatcher: Callable[[], None],
                 rates: RequestRates):
        assert components.master is not None, "the console needs the master key"
        self.c = components
        self.work = work
        self.wake_dispatcher = wake_dispatcher
        self.rates = rates
        self.sessions = Sessions(components.master, components.keyring,
                                 components.settings.console_token, CONSOLE_PATH)
        self.data = DataPages(components, work)
        self.routes: list[Route] = [
            route("GET", "/", self.home),
            route("POST", "/logout", self.logout),
            route("GET", "/accounts", self.accounts),
            route("POST", "/keys/{key}/enabled", self.set_key_enabled),
            route("GET", "/outbox", self.outbox),
            route("POST", "/outbox/retry", self.retry),
            route("GET", "/bulk", self.bulk),
            route("POST", "/pools/{pool}/bulk-publish", self.start_bulk),
            route("GET", "/rates", self.rates_page),
            *self.data.routes(),
        ]

    @staticmethod
    def serves(raw_path: str) -> bool:
        return raw_path == CONSOLE_PATH or raw_path.startswith(CONSOLE_PATH + "/")

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path[len(CONSOLE_PATH):] or "/"
        ctx = Ctx(request, CONSOLE_PATH)
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponse(405, b"", (("allow", "GET, HEAD, POST"),),
                                content_type="text/plain")
        method = "GET" if request.method == "HEAD" else request.method
        if path.startswith("/static/") and method == "GET":
            found = static_file(path[len("/static/"):])
            return found or ctx.render("problem.html", 404, problem="There is no such file.")
        if method == "POST":
            ctx.form = parse_form(request)
        if path == "/login":
            return await (self.login(ctx) if method == "POST" else self.login_page(ctx))
        ctx.operator = await self.work(self.sessions.operator, request)
        if ctx.operator is None:
            if method == "GET":
                return ctx.redirect("/login")
            return ctx.render("problem.html", 403,
                              problem="You are not signed in (or your session ended).")
        if method == "POST" and not self.sessions.csrf_ok(ctx.operator, request, ctx.form):
            return ctx.render("problem.html", 403,
                              problem="This form's CSRF token is missing or wrong: reload the "
                                      "page and try again.")
        found_route = match(self.routes, method, path)
        if found_route is None:
            return ctx.render("problem.html", 404, problem="There is no such page.")
        handler, params = found_route[0].handler, found_route[1]
        try:
            response = await handler(ctx, **params)
        except ResourceNotFound as error:
            response = ctx.render("problem.html", 404, problem=error.message)
        except ServiceError as error:
            response = ctx.render("problem.html", error.status or 400, problem=error.message)
        if method == "POST":  # what operators changed, for the audit trail
            log.info("console: %s POST %s -> %d", ctx.operator.who, path, response.status)
        return response

    # --- signing in and out -----------------------------------------------------------

    async def login_page(self, ctx: Ctx, problem: str | None = None,
                         status: int = 200) -> HttpResponse:
        nonce = secrets.token_urlsafe(24)
        response = ctx.render("login.html", status, login_csrf=nonce, problem=problem,
                              admin_token=bool(self.c.settings.console_token))
        cookie = ("set-cookie", self.sessions.login_cookie(ctx.request, nonce))
        return HttpResponse(response.status, response.body, (*response.headers, cookie),
                            response.content_type)

    async def login(self, ctx: Ctx) -> HttpResponse:
        if not self.sessions.login_csrf_ok(ctx.request, ctx.form):
            return await self.login_page(ctx, "The sign-in form had expired: try again.", 403)
        key_id = ctx.form.get("access_key_id", "").strip()
        secret = ctx.form.get("secret", "")
        operator = await self.work(self.sessions.check_login, key_id, secret)
        if operator is None:
            log.warning("console: refused sign-in for key id %r", key_id[:128])
            await asyncio.sleep(FAILED_LOGIN_PAUSE)
            return await self.login_page(ctx, "Wrong access key id or secret.", 401)
        log.info("console: %s signed in", operator.who)
        return ctx.redirect("/pools", self.sessions.session_cookie(ctx.request, operator),
                            self.sessions.cleared(ctx.request, LOGIN_COOKIE))

    async def logout(self, ctx: Ctx) -> HttpResponse:
        return ctx.redirect("/login", self.sessions.cleared(ctx.request))

    async def home(self, ctx: Ctx) -> HttpResponse:
        return ctx.redirect("/pools")

    # --- accounts and keys --------------------------------------------------------------

    async def accounts(self, ctx: Ctx) -> HttpResponse:
        assert ctx.operator is not None
        account = ctx.operator.account_id

        def read() -> tuple[list[Any], list[Any]]:
            with self.c.store.read() as tx:
                accounts = [a for a in tx.list_accounts() if account in (None, a.account_id)]
                return accounts, tx.list_access_keys(account)

        accounts, keys = await self.work(read)
        return ctx.render("accounts.html", accounts=accounts, keys=keys,
                          notice=ctx.arg("notice"))

    async def set_key_enabled(self, ctx: Ctx, key: str) -> HttpResponse:
        """Disables (or enables again) a developer key of the operator's account; a
        disabled key's requests are refused, its console sessions end."""
        assert ctx.operator is not None
        enabled = ctx.form.get("enabled") == "1"

        def change() -> bool:
            with self.c.store.write() as tx:
                stored = tx.get_access_key(key)
                if stored is None or not ctx.operator or not ctx.operator.sees(
                        stored.account_id):
                    return False
                tx.set_key_enabled(key, enabled)
            self.c.keyring.forget(key)
            return True

        if not await self.work(change):
            raise ResourceNotFound(f"There is no developer key {key}")
        done = "enabled" if enabled else "disabled"
        return ctx.redirect(f"/accounts?notice={done}+{key}")

    # --- the outbox ---------------------------------------------------------------------

    def _outbox(self, account: str | None) -> tuple[list[Any], list[Any], int, int]:
        pools = None if account is None else {p.identity_pool_id
                                              for p in visible_pools(self.c, account)}
        with self.c.store.read() as tx:
            dead = tx.outbox_entries("dead", OUTBOX_SHOWN)
            pending = tx.outbox_entries("pending", OUTBOX_SHOWN)
            counts = tx.count_outbox("dead"), tx.count_outbox("pending")
        if pools is not None:
            dead = [e for e in dead if e.ordering_key.split("/")[0] in pools]
            pending = [e for e in pending if e.ordering_key.split("/")[0] in pools]
        return dead, pending, *counts

    async def outbox(self, ctx: Ctx) -> HttpResponse:
        assert ctx.operator is not None
        dead, pending, dead_count, pending_count = await self.work(
            self._outbox, ctx.operator.account_id)
        return ctx.render("outbox.html", dead=dead, pending=pending, dead_count=dead_count,
                          pending_count=pending_count, shown=OUTBOX_SHOWN,
                          notice=ctx.arg("notice"), now=time.time())

    async def retry(self, ctx: Ctx) -> HttpResponse:
        assert ctx.operator is not None
        dead, _, _, _ = await self.work(self._outbox, ctx.operator.account_id)
        wanted = ctx.form.get("id", "all")
        ids = [e.id for e in dead if wanted == "all" or str(e.id) == wanted]

        def requeue() -> int:
            with self.c.store.write() as tx:
                return tx.outbox_requeue_dead(time.time(), ids)

        count = await self.work(requeue) if ids else 0
        self.wake_dispatcher()
        return ctx.redirect(f"/outbox?notice=requeued+{count}")

    # --- bulk publish -------------------------------------------------------------------

    async def bulk(self, ctx: Ctx) -> HttpResponse:
        assert ctx.operator is not None

        def read() -> list[tuple[Any, Any]]:
            pools = visible_pools(self.c, ctx.operator.account_id if ctx.operator else None)
            return [(p, self.c.service.bulk_publish_details(Caller(p.account_id),
                                                             p.identity_pool_id))
                    for p in pools]

        return ctx.render("bulk.html", jobs=await self.work(read), notice=ctx.arg("notice"))

    async def start_bulk(self, ctx: Ctx, pool: str) -> HttpResponse:
        _, caller = await self.data.owner(ctx, pool)
        await self.work(self.c.service.bulk_publish, caller, pool)
        return ctx.redirect("/bulk?notice=started")

    # --- request rates ------------------------------------------------------------------

    async def rates_page(self, ctx: Ctx) -> HttpResponse:
        rows, span = await self.work(self.rates.rows)
        return ctx.render("rates.html", rows=rows, span=span, workers=self.c.settings.workers)

