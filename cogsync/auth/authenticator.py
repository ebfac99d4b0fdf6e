"""Who sent a request: SigV4 verified against a developer key or temporary identity
credentials, giving a :class:`Caller`; or, in open mode, the caller the credentials name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cogsync.auth.caller import Caller
from cogsync.auth.credentials import KeyRing
from cogsync.auth.sigv4 import parse_signed_request, verify
from cogsync.auth.temporary import CredentialIssuer
from cogsync.errors import InternalError, ServiceError, UnrecognizedClient
from cogsync.protocol.routing import HttpRequest
from cogsync.request_log import RequestInfo
from cogsync.request_log import current as current_request

T = TypeVar("T")
StoreWork = Callable[..., Awaitable[Any]]


class Authenticator:
    def __init__(
        self,
        keyring: KeyRing,
        credentials: CredentialIssuer,
        region: str,
        store_work: StoreWork,
        *,
        open_mode: bool = False,
        default_account: Callable[[], Awaitable[str | None]] | None = None,
    ):
        self.keyring = keyring
        self.credentials = credentials
        self.region = region
        self.store_work = store_work  # runs a store call (inline or on a thread)
        self.open_mode = open_mode
        self.default_account = default_account
        self._open_caller: Caller | None = None
        self._developers: dict[str, Caller] = {}

    async def __call__(self, request: HttpRequest, service: str) -> Caller:
        """The caller, also noted for the request's log line; or the AWS error, and why
        (its code and message, never a secret) noted for it."""
        info = current_request()
        try:
            caller = await self._caller(request, service, info)
        except ServiceError as error:
            if info is not None:
                info.reason = f"{error.code}: {error.message}"
            raise
        if info is not None:
            info.called_by(caller)
        return caller

    async def _caller(self, request: HttpRequest, service: str,
                      info: RequestInfo | None) -> Caller:
        if self.open_mode:
            return await self._open_mode_caller(request)
        claim = parse_signed_request(request)
        if info is not None:
            info.access_key = claim.access_key_id
        if claim.security_token is not None:
            # Temporary identity credentials: everything needed is in the token.
            identity, secret = self.credentials.open(claim.access_key_id, claim.security_token)
            verify(request, claim, secret, region=self.region, service=service)
            return identity.caller()
        keyring = self.keyring
        hit, key = keyring.cached(claim.access_key_id)
        if not hit:
            key = await self.store_work(keyring.lookup, claim.access_key_id)
        if key is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        verify(request, claim, key.secret_access_key, region=self.region, service=service)
        if not key.used:
            await self.store_work(keyring.mark_used, key)
        return self._developer(key.account_id)

    def _developer(self, account_id: str) -> Caller:
        """The caller of a developer key of the account (one object per account)."""
        caller = self._developers.get(account_id)
        if caller is None:
            caller = self._developers[account_id] = Caller(account_id=account_id)
        return caller

    async def _open_mode_caller(self, request: HttpRequest) -> Caller:
        """Open mode: signatures are not verified, but credentials still name the caller:
        identity credentials act as their identity, a known developer key as its
        account; unsigned requests and unknown keys (``testing``, say) act as a developer
        of the first account."""
        signed = "authorization" in request.headers or any(
            name == "X-Amz-Credential" for name, _ in request.query
        )
        if signed:
            claim = parse_signed_request(request)
            if claim.security_token is not None:
                identity, _ = self.credentials.open(claim.access_key_id, claim.security_token)
                return identity.caller()
            hit, key = self.keyring.cached(claim.access_key_id)
            if not hit:
                key = await self.store_work(self.keyring.lookup, claim.access_key_id)
            if key is not None:
                return Caller(account_id=key.account_id)
        if self._open_caller is None:
            account = await self.default_account() if self.default_account else None
            if account is None:
                raise InternalError("open mode needs an account; none exists yet")
            self._open_caller = Caller(account_id=account)
        return self._open_caller
