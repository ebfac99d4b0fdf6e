"""Settings of one cogsync process, from command-line flags and ``COGSYNC_*`` variables.

Every setting is one row of :data:`OPTIONS`: its flag, its variable, its default and the
check its value must pass. The command line's flags and their help are built from the
table, and a test holds docs/configuration.md to it, so the three never disagree. A
value that fails its check is a :class:`ConfigError` naming the flag or variable it came
from; nothing is started with it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cogsync.errors import StartupError


class ConfigError(StartupError):
    """A flag or variable has a value cogsync cannot use; the message says which."""


@dataclass(frozen=True)
class Limits:
    """Service limits; the defaults are AWS's."""

    datasets_per_identity: int = 20
    dataset_bytes: int = 1024 * 1024
    # Live records per dataset; tombstones (removed records) do not count, like NumRecords.
    records_per_dataset: int = 1024
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
    # "transaction": the database URL is a transaction-pooling PgBouncer (docs/scaling.md)
    database_pooler: str = "none"
    live_database_url: str | None = None  # LISTEN here (direct, not pooled); default: above
    region: str = "us-east-1"
    secret_key: str | None = None  # the master key; default: a file in data_dir
    # "NORMAL" survives a crash of the process; "FULL" also the loss of power.
    sqlite_synchronous: str = "NORMAL"
    open_mode: bool = False  # signatures not verified: for local tests only
    # A new database in a temporary folder, removed when the server stops (for tests).
    ephemeral: bool = False
    print_json: bool = False  # one JSON line on stdout when ready, for test harnesses
    test_controls: bool = False  # faults and server-side moves under /_cogsync/test/
    console: bool = False  # the operators' web console under /_cogsync/console
    console_token: str | None = None  # an admin token that signs in to the console
    workers: int = 1
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = False
    # /_cogsync/metrics: None answers loopback clients only; a token is then required.
    metrics_token: str | None = None
    # Origins whose pages may call cogsync: ("*",), ("none",) or origins; None: the
    # default (any origin; in open mode only pages on this machine). See http_cors.
    cors_origins: tuple[str, ...] | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    # Fixed credentials for scripted set-ups, used only when the database is new.
    bootstrap_access_key_id: str | None = None
    bootstrap_secret_access_key: str | None = None
    bootstrap_pool_id: str | None = None
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
        return self.database_url or f"sqlite:///{self.sqlite_file}"

    @property
    def sqlite_file(self) -> Path:
        """Where the default database lives (with no --database)."""
        return (self.data_dir / "cogsync.db").resolve()

    @property
    def resolved_streams_url(self) -> str:
        return self.streams_url or f"file://{(self.data_dir / 'streams').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def database_label(self) -> str:
        """The database as a person reads it (no password)."""
        if self.database_url is None:
            return f"SQLite file {self.sqlite_file}"
        parsed = urlparse(self.database_url)
        if parsed.scheme.startswith("sqlite"):
            return f"SQLite file {Path(self.database_url.split('://', 1)[1][1:]).resolve()}"
        where = parsed.hostname or "localhost"
        if parsed.port:
            where += f":{parsed.port}"
        return f"PostgreSQL at {where}{parsed.path}"


# --- checks of values, one per kind ---------------------------------------------------
# Each takes the text as given and returns the value, or raises ValueError saying what
# was expected (the caller adds where the text came from).

_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")
REGION_MAX = 18  # a pool id is "<region>:<uuid>", at most 55 characters
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")
STREAM_SCHEMES = ("file", "redis", "rediss", "nats", "tls", "kinesis", "kinesis+http",
                  "kinesis+https")
PUSH_SCHEMES = ("sns", "sns+http", "sns+https", "http", "https")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{16,128}")
_POOL_ID = re.compile(r"[\w-]+:[0-9a-f-]+", re.ASCII)


def whole_number(lowest: int, highest: int | None = None) -> Callable[[str], int]:
    def check(text: str) -> int:
        value = int(text) if _DIGITS.fullmatch(text) else None
        if value is None or value < lowest or (highest is not None and value > highest):
            top = f" to {highest}" if highest is not None else " or more"
            raise ValueError(f"must be a whole number from {lowest}{top}")
        return value

    return check


def seconds(lowest: float = 0.0) -> Callable[[str], float]:
    def check(text: str) -> float:
        if not _DECIMAL.fullmatch(text) or float(text) < lowest:
            raise ValueError(f"must be a number of seconds, at least {lowest:g}")
        return float(text)

    return check


def rate(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ValueError("must be requests per second (0 for no limit)")
    return float(text)


def switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0 (true/false, yes/no, on/off)")


def one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return text.lower()

    return check


def host(text: str) -> str:
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise ValueError("must be an address or host name, such as 127.0.0.1 or 0.0.0.0")
    return text


def region(text: str) -> str:
    if not _REGION.fullmatch(text) or len(text) > REGION_MAX:
        raise ValueError(
            f"must be a region name such as us-east-1 (lower-case letters, digits and "
            f"dashes, at most {REGION_MAX} characters)"
        )
    return text


def data_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError("must be a folder (this is a file)")
    return path


def database_url(text: str) -> str:
    parsed = urlparse(text)
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme in ("postgresql", "postgres"):
        if not parsed.netloc and not parsed.path.strip("/"):
            raise ValueError("needs a host and a database: postgresql://user@host:5432/db")
        return text
    if scheme == "sqlite":
        path = text.split("://", 1)[1] if "://" in text else ""
        if path in ("", "/", "/:memory:") or ":memory:" in path or path.startswith("/file:"):
            raise ValueError(
                "must name a file: sqlite:////absolute/path.db (an in-memory database "
                "cannot be shared by the server's connections; for a database that is "
                "gone when the server stops, use --ephemeral)"
            )
        if Path(path[1:]).is_dir():
            raise ValueError("must name a database file (this is a folder)")
        return text
    raise ValueError(
        "must be sqlite:///path/to/file.db or postgresql://user@host:5432/database"
    )


def streams_url(text: str) -> str:
    if urlparse(text).scheme not in STREAM_SCHEMES:
        raise ValueError(
            "must be file:///folder, redis://host:6379/0, nats://host:4222 or "
            "kinesis://host:port"
        )
    return text


def push_urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in text.split(",") if u.strip())
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in PUSH_SCHEMES or not parsed.netloc:
            raise ValueError("must be sns://host:port or http(s):// webhook URLs")
    return urls


def http_url(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http:// or https:// URL, such as http://127.0.0.1:9001")
    return text


def secret_key(text: str) -> str:
    from cogsync.crypto import MasterKey

    try:
        MasterKey.decode(text)
    except ValueError:
        raise ValueError("must be 32 bytes as 64 hex digits (or URL-safe base64)") from None
    return text


def access_key_id(text: str) -> str:
    if not _ACCESS_KEY_ID.fullmatch(text):
        raise ValueError("must be 16 to 128 letters and digits, such as AKCSEXAMPLE0000000")
    return text


def secret_access_key(text: str) -> str:
    if not 8 <= len(text) <= 128 or not text.isprintable() or not text.isascii():
        raise ValueError("must be 8 to 128 printable ASCII characters")
    return text


def pool_id(text: str) -> str:
    if not _POOL_ID.fullmatch(text) or len(text) > 55:
        raise ValueError("must look like us-east-1:0e3c1d2a-... (region, colon, hex and dashes)")
    return text


ANY_ORIGIN = "*"
NO_ORIGIN = "none"
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def cors_origins(text: str) -> tuple[str, ...]:
    """``*``, ``none``, or a comma list of origins (``scheme://host[:port]``)."""
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if entries in ([ANY_ORIGIN], [NO_ORIGIN]):
        return (entries[0],)
    if not entries:
        raise ValueError("must be *, none, or a comma list of origins")
    origins = []
    for entry in entries:
        origin = entry.rstrip("/").lower()
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"must be *, none or origins (scheme://host[:port], e.g. "
                f"https://app.example.com); {entry!r} is not one"
            )
        origins.append(origin)
    return tuple(origins)


def text(value: str) -> str:
    return value


def metrics_token(value: str) -> str:
    if not 16 <= len(value) <= 256 or not value.isascii() or not value.isprintable() \
            or " " in value:
        raise ValueError("must be 16 to 256 printable ASCII characters without spaces")
    return value


CONSOLE_TOKEN_LENGTH = 32


def console_token(value: str) -> str:
    if len(value) < CONSOLE_TOKEN_LENGTH or any(c.isspace() for c in value):
        raise ValueError(
            f"must be {CONSOLE_TOKEN_LENGTH} characters or more, without spaces "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value


# --- the table ---------------------------------------------------------------------

SERVE = "serve"
EVERY = "every"  # a flag of every command that opens the database


@dataclass(frozen=True)
class Option:
    """One setting: where it is read from and how it is checked."""

    name: str  # the Settings field; "limits.<field>" for a limit
    variable: str
    parse: Callable[[str], Any]
    help: str
    flag: str | None = None  # None: a variable only
    commands: str = SERVE  # which commands have the flag: SERVE or EVERY
    metavar: str | None = None
    is_switch: bool = False  # a flag without a value
    repeatable: bool = False  # a flag given many times; its variable is a comma list
    default_text: str | None = None  # the default as the docs say it

    @property
    def secret(self) -> bool:
        """A secret's value is never echoed in an error (it may sit in a shared log)."""
        return any(word in self.name for word in ("secret", "token"))

    @property
    def default(self) -> Any:
        if self.name.startswith("limits."):
            return getattr(Limits(), self.name.split(".", 1)[1])
        if self.name.startswith("http."):
            return getattr(HttpLimits(), self.name.split(".", 1)[1])
        return getattr(Settings(), self.name)

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        value = self.default
        if isinstance(value, bool):
            return "off" if not value else "on"
        if value is None or value == ():
            return "none"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


OPTIONS: tuple[Option, ...] = (
    # Where the data is: every command.
    Option("data_dir", "COGSYNC_DATA_DIR", data_dir,
           "folder for the SQLite file, the master key and the default stream files",
           flag="--data-dir", commands=EVERY, metavar="DIR", default_text="./.cogsync"),
    Option("database_url", "COGSYNC_DATABASE_URL", database_url,
           "database URL: sqlite:///FILE, or postgresql://user@host:5432/db",
           flag="--database", commands=EVERY, metavar="URL",
           default_text="SQLite in the data folder"),
    Option("database_pooler", "COGSYNC_DATABASE_POOLER", one_of("none", "transaction"),
           "transaction: --database is a PgBouncer in transaction pooling mode (no prepared "
           "statements, no session state)", flag="--database-pooler", commands=EVERY,
           metavar="none|transaction"),
    Option("live_database_url", "COGSYNC_LIVE_DATABASE_URL", database_url,
           "PostgreSQL URL for the live channel's LISTEN, direct (not through a "
           "transaction pooler)", flag="--live-database", metavar="URL",
           default_text="the --database URL"),
    Option("region", "COGSYNC_REGION", region,
           "region in new pool ids and in every signature's scope",
           flag="--region", commands=EVERY),
    Option("secret_key", "COGSYNC_SECRET_KEY", secret_key,
           "the master key, 64 hex digits; the same on every replica",
           default_text="<data-dir>/master.key, made on first start"),
    # Serving.
    Option("host", "COGSYNC_HOST", host, "address to bind; 0.0.0.0 for all interfaces",
           flag="--host"),
    Option("port", "COGSYNC_PORT", whole_number(0, 65535),
           "TCP port; 0 picks a free one", flag="--port"),
    Option("workers", "COGSYNC_WORKERS", whole_number(1, 64),
           "worker processes sharing the socket", flag="--workers"),
    Option("sqlite_synchronous", "COGSYNC_SQLITE_SYNCHRONOUS", one_of("normal", "full"),
           "NORMAL: a committed write survives a crash of the process; FULL: also power loss",
           flag="--sqlite-synchronous", metavar="NORMAL|FULL"),
    Option("open_mode", "COGSYNC_OPEN", switch,
           "open test mode: signatures are not verified (never in production)",
           flag="--open", is_switch=True),
    Option("cors_origins", "COGSYNC_CORS_ORIGINS", cors_origins,
           "origins whose web pages may call cogsync: *, none, or a comma list such as "
           "https://app.example.com,http://localhost:3000", flag="--cors-origins",
           metavar="ORIGINS", default_text="any origin; in open mode, pages on this machine"),
    Option("ephemeral", "COGSYNC_EPHEMERAL", switch,
           "a new database in a temporary folder, removed when the server stops (it "
           "ignores COGSYNC_DATA_DIR and COGSYNC_DATABASE_URL)", flag="--ephemeral",
           is_switch=True),
    Option("print_json", "COGSYNC_PRINT_JSON", switch,
           "when ready, print one JSON line (endpoint, region, credentials, pool id, pid) "
           "and nothing else on standard output; the welcome goes to standard error",
           flag="--print-json", is_switch=True),
    Option("test_controls", "COGSYNC_TEST_CONTROLS", switch,
           "test controls under /_cogsync/test/: injected faults and server-side moves, "
           "for developer keys (never in production)", flag="--test-controls",
           is_switch=True),
    Option("console", "COGSYNC_CONSOLE", switch,
           "the operators' web console at /_cogsync/console, signed in to with a developer "
           "key of the account (or COGSYNC_CONSOLE_TOKEN)", flag="--console", is_switch=True),
    Option("console_token", "COGSYNC_CONSOLE_TOKEN", console_token,
           "an admin token, 32 characters or more, that signs in to the web console as "
           "operator of every account (an environment variable only: a flag shows in ps)"),
    Option("log_level", "COGSYNC_LOG_LEVEL", one_of(*LOG_LEVELS),
           "least severe log messages shown: " + ", ".join(LOG_LEVELS), flag="--log-level",
           metavar="LEVEL"),
    Option("log_format", "COGSYNC_LOG_FORMAT", one_of(*LOG_FORMATS),
           "log lines as text, or as json (one object per line)", flag="--log-format",
           metavar="text|json"),
    Option("access_log", "COGSYNC_ACCESS_LOG", switch, "log every request",
           flag="--access-log", is_switch=True),
    Option("metrics_token", "COGSYNC_METRICS_TOKEN", metrics_token,
           "bearer token required to read /_cogsync/metrics (then from every client)",
           flag="--metrics-token", metavar="TOKEN",
           default_text="none: loopback clients only"),
    Option("bootstrap_access_key_id", "COGSYNC_BOOTSTRAP_ACCESS_KEY_ID", access_key_id,
           "the first developer key's id, used only when the database is new",
           flag="--access-key-id", metavar="ID", default_text="random"),
    Option("bootstrap_secret_access_key", "COGSYNC_BOOTSTRAP_SECRET_ACCESS_KEY",
           secret_access_key, "the first developer key's secret, used only when the "
           "database is new", flag="--secret-access-key", metavar="SECRET",
           default_text="random"),
    Option("bootstrap_pool_id", "COGSYNC_BOOTSTRAP_POOL_ID", pool_id,
           "the first identity pool's id, used only when the database is new",
           flag="--pool-id", metavar="ID", default_text="random"),
    # Integrations.
    Option("streams_url", "COGSYNC_STREAMS_URL", streams_url,
           "Cognito Streams backend: file://DIR, redis://, nats://, kinesis://HOST:PORT",
           flag="--streams", metavar="URL", default_text="file://<data-dir>/streams"),
    Option("push_urls", "COGSYNC_PUSH_URLS", push_urls,
           "push sync channel: sns://HOST:PORT or an http(s):// webhook (repeatable; "
           "the variable takes a comma list)", flag="--push", metavar="URL",
           repeatable=True),
    Option("lambda_endpoint", "COGSYNC_LAMBDA_ENDPOINT", http_url,
           "Lambda Invoke API endpoint for the Sync Trigger", flag="--lambda-endpoint",
           metavar="URL", default_text="AWS Lambda of the region"),
    Option("push_webhook_secret", "COGSYNC_PUSH_WEBHOOK_SECRET", text,
           "HMAC key that signs webhook pushes"),
    Option("lambda_timeout_seconds", "COGSYNC_LAMBDA_TIMEOUT", seconds(0.001),
           "seconds to wait for the Sync Trigger function"),
    Option("outbox_max_attempts", "COGSYNC_OUTBOX_MAX_ATTEMPTS", whole_number(1),
           "delivery attempts of a stream record or push before it is a dead letter"),
    Option("outbox_backoff_seconds", "COGSYNC_OUTBOX_BACKOFF", seconds(0.001),
           "seconds before the first retry; doubles up to a minute"),
    Option("lease_seconds", "COGSYNC_LEASE_SECONDS", seconds(0.1),
           "a delivering replica silent this long is replaced by another"),
    Option("job_stale_seconds", "COGSYNC_JOB_STALE_SECONDS", seconds(0.1),
           "a bulk publish runner silent this long is replaced"),
    # Cognito Identity.
    Option("credentials_lifetime_seconds", "COGSYNC_CREDENTIALS_LIFETIME", seconds(1),
           "seconds the identity credentials from GetCredentialsForIdentity last"),
    Option("openid_issuer", "COGSYNC_OPENID_ISSUER", text,
           "iss of the OpenID tokens cogsync signs"),
    Option("oidc_providers", "COGSYNC_OIDC_PROVIDERS", text,
           "external OpenID Connect login providers: a JSON list, or a JSON file's path"),
    # Limits.
    Option("rate_limit_identity", "COGSYNC_RATE_LIMIT_IDENTITY", rate,
           "requests per second per identity, per replica (0: no limit)"),
    Option("rate_limit_pool", "COGSYNC_RATE_LIMIT_POOL", rate,
           "requests per second per pool, per replica (0: no limit)"),
    Option("limits.datasets_per_identity", "COGSYNC_MAX_DATASETS", whole_number(1),
           "datasets per identity"),
    Option("limits.dataset_bytes", "COGSYNC_MAX_DATASET_BYTES", whole_number(1),
           "bytes of keys plus values of the live records of one dataset"),
    Option("limits.records_per_dataset", "COGSYNC_MAX_RECORDS", whole_number(1),
           "live records of one dataset (removed records do not count)"),
    Option("limits.session_ttl_seconds", "COGSYNC_SESSION_TTL", seconds(1),
           "seconds a SyncSessionToken from ListRecords stays valid"),
    # The HTTP edge (docs/security.md).
    Option("http.max_request_line", "COGSYNC_MAX_REQUEST_LINE", whole_number(256, 1 << 20),
           "longest request line, in bytes (414 beyond)", flag="--max-request-line",
           metavar="BYTES"),
    Option("http.max_header_bytes", "COGSYNC_MAX_HEADER_BYTES", whole_number(1024, 1 << 22),
           "largest request head (request line and header fields), in bytes (431 beyond)",
           flag="--max-header-bytes", metavar="BYTES"),
    Option("http.max_headers", "COGSYNC_MAX_HEADERS", whole_number(8, 10_000),
           "most header fields in one request (431 beyond)", flag="--max-headers",
           metavar="COUNT"),
    Option("http.header_timeout", "COGSYNC_HEADER_TIMEOUT", seconds(0.1),
           "seconds from a request's first byte to the end of its head (408 after)",
           flag="--header-timeout", metavar="SECONDS"),
    Option("http.body_timeout", "COGSYNC_BODY_TIMEOUT", seconds(0.1),
           "seconds for a whole request body, and for a client to take a stalled answer",
           flag="--body-timeout", metavar="SECONDS"),
    Option("http.keep_alive_timeout", "COGSYNC_KEEP_ALIVE_TIMEOUT", seconds(0.1),
           "seconds an idle connection stays open; keep it above the load balancer's",
           flag="--keep-alive-timeout", metavar="SECONDS"),
    Option("http.graceful_timeout", "COGSYNC_GRACEFUL_TIMEOUT", seconds(0),
           "seconds a stop waits for requests in flight", flag="--graceful-timeout",
           metavar="SECONDS"),
)

def flag_help(option: Option) -> str:
    return f"{option.help} (default: {option.describe_default()}; {option.variable})"


def load_settings(given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from flag values (``given``, by option name; None or absent: not given)
    and the environment; a flag wins over its variable, an empty variable is unset.

    Raises ConfigError naming the first flag or variable whose value does not check."""
    environ = os.environ if environ is None else environ
    top: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    from_variables: set[str] = set()
    http: dict[str, Any] = {}
    for option in OPTIONS:
        raw = given.get(option.name)
        if option.is_switch and raw is False:
            raw = None
        source = option.flag
        if option.repeatable and raw:
            raw = ",".join(raw)
        elif raw is True:
            raw = "1"
        if raw is None:
            raw = environ.get(option.variable) or None
            source = option.variable
            from_variables.add(option.name)
        if raw is None:
            continue
        try:
            value = option.parse(str(raw))
        except ValueError as exc:
            shown = "the value given" if option.secret else repr(str(raw))
            raise ConfigError(f"{source} {exc}, not {shown}") from None
        if option.name.startswith("limits."):
            limits[option.name.split(".", 1)[1]] = value
        elif option.name.startswith("http."):
            http[option.name.split(".", 1)[1]] = value
        else:
            top[option.name] = value
    if "sqlite_synchronous" in top:
        top["sqlite_synchronous"] = top["sqlite_synchronous"].upper()
    if top.get("ephemeral"):
        _ephemeral_data(top, from_variables)
    settings = replace(Settings(), limits=replace(Limits(), **limits),
                       http=replace(HttpLimits(), **http), **top)
    _check_together(settings)
    return settings


def _ephemeral_data(top: dict[str, Any], from_variables: set[str]) -> None:
    """An ephemeral server keeps its data in a temporary folder of its own: where the
    environment says the data is does not matter to it, and flags that say so conflict."""
    for name, flag in (("data_dir", "--data-dir"), ("database_url", "--database")):
        if name in top and name not in from_variables:
            raise ConfigError(
                f"{flag} and --ephemeral conflict: an ephemeral server keeps its data in a "
                "temporary folder of its own"
            )
        top.pop(name, None)


def _check_together(settings: Settings) -> None:
    """Checks that need more than one setting."""
    pair = (settings.bootstrap_access_key_id, settings.bootstrap_secret_access_key)
    if (pair[0] is None) != (pair[1] is None):
        raise ConfigError(
            "--access-key-id and --secret-access-key (COGSYNC_BOOTSTRAP_ACCESS_KEY_ID, "
            "COGSYNC_BOOTSTRAP_SECRET_ACCESS_KEY) go together: give both or neither"
        )
    if settings.test_controls and settings.workers > 1:
        raise ConfigError(
            "--test-controls needs --workers 1: injected faults and expired sessions are "
            "kept in the memory of the one server process"
        )
    if settings.http.max_request_line > settings.http.max_header_bytes:
        raise ConfigError(
            "--max-request-line must not be larger than --max-header-bytes (the request "
            "line is part of the head)"
        )
    pool = settings.bootstrap_pool_id
    if pool is not None and not pool.startswith(settings.region + ":"):
        raise ConfigError(
            f"--pool-id {pool!r} must begin with the region, {settings.region}:"
        )


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
    if raw.get("cors_origins") is not None:
        raw["cors_origins"] = tuple(raw["cors_origins"])
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in raw.items() if k in known})
