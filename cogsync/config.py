"""Settings of one cogsync process, from command-line flags and ``COGSYNC_*`` variables."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Service limits; the defaults are AWS's."""

    datasets_per_identity: int = 20
    dataset_bytes: int = 1024 * 1024
    records_page: int = 1024  # ListRecords: default and largest MaxResults
    datasets_page: int = 64  # ListDatasets
    pools_page: int = 60  # ListIdentityPoolUsage
    session_ttl_seconds: float = 3600.0


@dataclass(frozen=True)
class HttpLimits:
    """What the HTTP edge accepts from a connection, and for how long it waits.

    Sizes are AWS-like: API Gateway and the load balancers in front of AWS services
    take about 16 KiB of request head. The keep-alive timeout is longer than the idle
    timeout of the common load balancers (AWS's 60 s), so that they, not cogsync, close
    idle connections: a server that closes first races requests already on their way.
    """

    max_request_line: int = 8 * 1024  # bytes; longer: 414
    max_header_bytes: int = 16 * 1024  # the whole head, request line included; more: 431
    max_headers: int = 100  # header fields; more: 431
    header_timeout: float = 20.0  # seconds from a request's first byte to its last header
    body_timeout: float = 60.0  # seconds for the whole body (and for a stalled answer)
    keep_alive_timeout: float = 75.0  # seconds an idle connection stays open
    graceful_timeout: float = 30.0  # seconds a stop waits for requests in flight


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".cogsync")
    database_url: str | None = None
    region: str = "us-east-1"
    secret_key: str | None = None  # the master key; default: a file in data_dir
    # "NORMAL" survives a crash of the process; "FULL" also the loss of power.
    sqlite_synchronous: str = "NORMAL"
    open_mode: bool = False  # no authentication at all: for local tests only
    max_body_bytes: int = 4 * 1024 * 1024
    # Cognito Identity
    credentials_lifetime_seconds: float = 3600.0
    openid_issuer: str = "https://cognito-identity.amazonaws.com"
    oidc_providers: str | None = None  # JSON list, or a JSON file's path
    # Integrations
    streams_url: str | None = None  # default: file://<data_dir>/streams
    push_urls: tuple[str, ...] = ()
    push_webhook_secret: str | None = None
    lambda_endpoint: str | None = None  # default: AWS Lambda of the region
    lambda_timeout_seconds: float = 5.0
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: float = 0.5  # first retry; doubles up to a minute
    job_stale_seconds: float = 15.0  # a bulk publish runner silent this long is replaced
    lease_seconds: float = 10.0  # a dispatcher silent this long is replaced by another
    # Requests per second and per replica; 0 is no limit.
    rate_limit_identity: float = 0.0
    rate_limit_pool: float = 0.0
    limits: Limits = field(default_factory=Limits)
    http: HttpLimits = field(default_factory=HttpLimits)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'cogsync.db').resolve()}"

    @property
    def resolved_streams_url(self) -> str:
        return self.streams_url or f"file://{(self.data_dir / 'streams').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def settings_to_json(settings: Settings) -> str:
    """For worker processes, which rebuild the parent's settings from it."""
    raw = asdict(settings)
    raw["data_dir"] = str(settings.data_dir)
    return json.dumps(raw)


def settings_from_json(text: str) -> Settings:
    raw: dict[str, Any] = json.loads(text)
    raw["data_dir"] = Path(raw["data_dir"])
    raw["limits"] = Limits(**raw["limits"])
    raw["http"] = HttpLimits(**raw.get("http", {}))
    raw["push_urls"] = tuple(raw["push_urls"])
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in raw.items() if k in known})
