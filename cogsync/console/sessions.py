"""Who is signed in to the console: the operator login, its session cookie, CSRF tokens.

An operator signs in with a developer key of an account (its id and secret: the
console then shows that account only) or with the admin token of COGSYNC_CONSOLE_TOKEN
(every account). The session is a cookie sealed with the master key (AES-GCM), so every
worker and replica reads it and no session table is kept; it holds the operator, its
expiry and its CSRF token. Each request checks again that the key is still enabled (or
the token unchanged): disabling the key signs its sessions out.

Cookies are HttpOnly (no script reads them), SameSite=Strict (no other site's page
sends them) and scoped to the console's path; Secure when the request came over HTTPS
(directly or, as a proxy says, in X-Forwarded-Proto). Every POST must carry the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); the login form
carries one too, tied to a cookie of its own (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

import orjson

from cogsync.auth.credentials import KeyRing
from cogsync.crypto import MasterKey, SealError, decode_token, encode_token
from cogsync.protocol.routing import HttpRequest

SESSION_COOKIE = "cogsync_console"
LOGIN_COOKIE = "cogsync_console_login"
SESSION_SECONDS = 8 * 3600.0
ADMIN = "admin token"
_PURPOSE = b"console-session"


@dataclass(frozen=True)
class Operator:
    """A signed-in operator: of one account, or (account_id None) of every account."""

    account_id: str | None
    who: str  # the access key id, or ADMIN
    csrf: str
    expires_at: float

    def sees(self, account_id: str) -> bool:
        return self.account_id is None or self.account_id == account_id


def cookies_of(request: HttpRequest) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except Exception:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def is_https(request: HttpRequest) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https"


class Sessions:
    def __init__(self, master: MasterKey, keyring: KeyRing, admin_token: str | None,
                 path: str):
        self.box = master.box("console-sessions")
        self.keyring = keyring
        self.admin_token = admin_token
        self.path = path

    # --- signing in ---------------------------------------------------------------

    def check_login(self, access_key_id: str, secret: str) -> Operator | None:
        """The operator these credentials sign in, or None. Blocking (may read the
        store). A key id of "admin" with the admin token signs in to every account."""
        csrf = secrets.token_urlsafe(24)
        expires = time.time() + SESSION_SECONDS
        if self.admin_token and access_key_id in ("", "admin"):
            if hmac.compare_digest(secret.encode(), self.admin_token.encode()):
                return Operator(None, ADMIN, csrf, expires)
            return None
        if not access_key_id or len(access_key_id) > 128:
            return None
        key = self.keyring.lookup(access_key_id)
        if key is None or not hmac.compare_digest(secret.encode(),
                                                  key.secret_access_key.encode()):
            return None
        return Operator(key.account_id, key.access_key_id, csrf, expires)

    def _token_tag(self) -> str:
        token = (self.admin_token or "").encode()
        return hashlib.sha256(b"cogsync-console/" + token).hexdigest()[:16]

    def seal(self, operator: Operator) -> str:
        body = {"a": operator.account_id, "w": operator.who, "c": operator.csrf,
                "e": operator.expires_at}
        if operator.who == ADMIN:
            body["t"] = self._token_tag()
        return encode_token(self.box.seal(orjson.dumps(body), _PURPOSE))

    def operator(self, request: HttpRequest) -> Operator | None:
        """The operator of the request's session cookie, if it is valid now. Blocking."""
        sealed = cookies_of(request).get(SESSION_COOKIE)
        if not sealed:
            return None
        try:
            body = orjson.loads(self.box.open(decode_token(sealed), _PURPOSE))
            operator = Operator(body["a"], body["w"], body["c"], float(body["e"]))
        except (SealError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        if operator.expires_at < time.time():
            return None
        if operator.who == ADMIN:
            if not self.admin_token or body.get("t") != self._token_tag():
                return None
        else:
            key = self.keyring.lookup(operator.who)
            if key is None or key.account_id != operator.account_id:
                return None
        return operator

    # --- CSRF ---------------------------------------------------------------------

    @staticmethod
    def csrf_given(request: HttpRequest, form: dict[str, str]) -> str:
        return request.headers.get("x-csrf-token") or form.get("csrf", "")

    def csrf_ok(self, operator: Operator, request: HttpRequest, form: dict[str, str]) -> bool:
        given = self.csrf_given(request, form)
        return bool(given) and hmac.compare_digest(given.encode(), operator.csrf.encode())

    def login_csrf_ok(self, request: HttpRequest, form: dict[str, str]) -> bool:
        cookie = cookies_of(request).get(LOGIN_COOKIE, "")
        given = self.csrf_given(request, form)
        return bool(cookie) and hmac.compare_digest(given.encode(), cookie.encode())

    # --- cookies ------------------------------------------------------------------

    def _cookie(self, request: HttpRequest, name: str, value: str, max_age: int) -> str:
        parts = [f"{name}={value}", f"Path={self.path}", f"Max-Age={max_age}", "HttpOnly",
                 "SameSite=Strict"]
        if is_https(request):
            parts.append("Secure")
        return "; ".join(parts)

    def session_cookie(self, request: HttpRequest, operator: Operator) -> str:
        return self._cookie(request, SESSION_COOKIE, self.seal(operator), int(SESSION_SECONDS))

    def login_cookie(self, request: HttpRequest, nonce: str) -> str:
        return self._cookie(request, LOGIN_COOKIE, nonce, 3600)

    def cleared(self, request: HttpRequest, name: str = SESSION_COOKIE) -> str:
        return self._cookie(request, name, "", 0)
