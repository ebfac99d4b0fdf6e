"""The console's small web layer: templates (Jinja2, autoescaped), forms, responses with
their security headers, and the table of routes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import jinja2

from cogsync.console.sessions import Operator
from cogsync.protocol.responses import HttpResponse
from cogsync.protocol.routing import HttpRequest

HERE = Path(__file__).parent
HTML = "text/html; charset=utf-8"
# Scripts and styles from the console's own files only; no frames, no referrer.
SECURITY_HEADERS = (
    ("content-security-policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".txt": "text/plain; charset=utf-8", ".svg": "image/svg+xml"}


def when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = when
    env.filters["query"] = lambda items: urlencode({k: v for k, v in items.items() if v})
    return env


TEMPLATES = _environment()


@dataclass
class Ctx:
    """One console request: the request, its form, and who is signed in."""

    request: HttpRequest
    base: str  # the console's path, "/_cogsync/console"
    operator: Operator | None = None
    form: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str) -> str:
        return (self.request.query_value(name) or "").strip()

    def render(self, template: str, status: int = 200, **values: Any) -> HttpResponse:
        body = TEMPLATES.get_template(template).render(
            base=self.base, operator=self.operator, path=self.request.raw_path,
            csrf=self.operator.csrf if self.operator else "", **values,
        )
        return HttpResponse(status, body.encode(), SECURITY_HEADERS, content_type=HTML)

    def redirect(self, where: str, *cookies: str) -> HttpResponse:
        headers = [("location", self.base + where), *SECURITY_HEADERS]
        headers += [("set-cookie", cookie) for cookie in cookies]
        return HttpResponse(303, b"", tuple(headers), content_type=HTML)


def parse_form(request: HttpRequest) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def static_file(name: str) -> HttpResponse | None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
        return None
    path = HERE / "static" / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or not path.is_file():
        return None
    headers = (("cache-control", "public, max-age=3600"), ("x-content-type-options", "nosniff"))
    return HttpResponse(200, path.read_bytes(), headers, content_type=kind)


Handler = Callable[..., Awaitable[HttpResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, template: str, handler: Handler) -> Route:
    """``/pools/{pool}``: each ``{name}`` is one percent-encoded path segment."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, re.compile(f"{regex}/?"), handler)


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for this method and path; a path that matches for another method only
    is a None as well (the caller answers 404 or 405)."""
    for candidate in routes:
        found = candidate.pattern.fullmatch(path)
        if found and candidate.method == method:
            return candidate, {k: unquote(v) for k, v in found.groupdict().items()}
    return None
