"""Everything a running server (or an admin command) holds, built once from the settings.

Each failure a person can cause at start-up (an unreachable database, a missing master
key, a bad providers list) becomes a :class:`StartupError` that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from cogsync.auth.credentials import KeyRing
from cogsync.auth.temporary import CredentialIssuer
from cogsync.config import Settings
from cogsync.crypto import MasterKey
from cogsync.errors import StartupError
from cogsync.identity.openid import OpenIdProvider, TokenSigner, load_providers
from cogsync.identity.service import IdentityService
from cogsync.integrations.sync_trigger import SyncTriggerInvoker
from cogsync.store.database import Store
from cogsync.store.engine import UnknownRevision, make_engine, migrate
from cogsync.sync.service import SyncService
from cogsync.sync.tokens import TokenSealer


@dataclass
class Components:
    settings: Settings
    store: Store
    keyring: KeyRing
    service: SyncService
    credentials: CredentialIssuer
    signer: TokenSigner
    identity: IdentityService
    master: MasterKey | None = None  # seals the web console's sessions


def _reason(exc: BaseException) -> str:
    """The first line of a driver's error, without SQLAlchemy's links and SQL."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def database_exists(settings: Settings) -> bool:
    """Whether the database holds a cogsync schema (a missing SQLite file does not)."""
    if settings.database_url is None or settings.database_url.startswith("sqlite"):
        url = settings.resolved_database_url
        path = Path(url.split(":///", 1)[1]) if ":///" in url else None
        if path is None or not path.exists():
            return False
    engine = _engine(settings)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    except DBAPIError as exc:
        raise StartupError(f"cannot reach {settings.database_label}: {_reason(exc)}") from None
    finally:
        engine.dispose()


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    try:
        return make_engine(
            settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
    except ImportError as exc:
        raise StartupError(
            f"the database driver is not installed ({exc.name or exc}): "
            "pip install 'psycopg[binary]' for PostgreSQL"
        ) from None
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StartupError(f"cannot use the database URL: {_reason(exc)}") from None
    except OSError as exc:
        raise StartupError(f"cannot create {settings.database_label}: {exc}") from None


def _master_key(settings: Settings, store: Store) -> MasterKey:
    if settings.secret_key:
        return MasterKey.decode(settings.secret_key)
    if not settings.key_file.exists():
        with store.read() as tx:
            holds_keys = tx.first_account() is not None
        if holds_keys:
            raise StartupError(
                f"the master key file {settings.key_file.resolve()} is missing, but "
                f"{settings.database_label} holds secrets sealed with a master key: point "
                "--data-dir at the server's data folder or set COGSYNC_SECRET_KEY"
            )
    try:
        return MasterKey.load_or_create(settings.key_file)
    except OSError as exc:
        raise StartupError(f"cannot read or create the master key: {exc}") from None


def _providers(settings: Settings) -> dict[str, OpenIdProvider]:
    try:
        return load_providers(settings.oidc_providers)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = exc if not isinstance(exc, KeyError) else f"an entry lacks {exc}"
        raise StartupError(
            "COGSYNC_OIDC_PROVIDERS must be a JSON list of providers (or a JSON file's "
            f"path), each with an issuer: {detail}"
        ) from None


def build_components(settings: Settings, *, run_migrations: bool = True) -> Components:
    providers = _providers(settings)  # checked before anything is created
    engine = _engine(settings)
    try:
        if run_migrations:
            migrate(engine)
        store = Store(engine)
        master = _master_key(settings, store)
    except DBAPIError as exc:
        engine.dispose()
        raise StartupError(f"cannot use {settings.database_label}: {_reason(exc)}") from None
    except UnknownRevision as exc:
        engine.dispose()
        raise StartupError(
            f"{settings.database_label} has a schema this version of cogsync does not know "
            f"(made by a newer version?): {exc}"
        ) from None
    except (ValueError, json.JSONDecodeError) as exc:
        engine.dispose()
        raise StartupError(f"the master key is not usable: {exc}") from None
    keyring = KeyRing(store, master.box("access-keys"))
    tokens = TokenSealer(master.box("tokens"), settings.limits.session_ttl_seconds)
    trigger = SyncTriggerInvoker(
        settings.lambda_endpoint, settings.region, settings.lambda_timeout_seconds
    )
    service = SyncService(store, tokens, settings.limits, trigger=trigger, region=settings.region)
    credentials = CredentialIssuer(master, settings.credentials_lifetime_seconds)
    signer = TokenSigner(store, master.box("openid"), settings.openid_issuer)
    identity = IdentityService(
        store, signer, providers, credentials, tokens, settings.region
    )
    return Components(settings, store, keyring, service, credentials, signer, identity, master)
