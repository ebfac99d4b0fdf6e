"""The pool being imported, read through the public Cognito Identity and Sync APIs.

Works against AWS or any wire-compatible server (another cogsync). Timestamps are kept
as the epoch numbers the wire carries (botocore's parsing into datetimes would round
them), throttling is retried with exponential backoff and full jitter, and failures that
no retry can mend become one-line errors.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from cogsync.transfer.errors import TransferError

THROTTLING = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
TRANSIENT = frozenset(
    {"InternalErrorException", "InternalError", "InternalFailure", "ServiceUnavailable"}
)
REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
    }
)
IDENTITIES_PAGE = 60  # ListIdentities and LookupDeveloperIdentity take at most 60
DATASETS_PAGE = 60


class SourceError(Exception):
    """The source refused one call (an identity that went away, say): not retried."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class SourceOptions:
    endpoint: str  # an http(s) URL serving both APIs, or "aws"
    pool_id: str
    region: str | None = None  # default: the region in the pool id
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    page_size: int = 1024  # ListRecords MaxResults
    max_retries: int = 10
    concurrency: int = 8
    backoff_base: float = 0.2
    backoff_cap: float = 20.0


@dataclass
class CallStats:
    requests: int = 0
    throttled: int = 0
    retried: int = 0  # other transient failures retried
    waited: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class Listing:
    """One dataset's records as ListRecords gave them, across its pages."""

    records: list[dict[str, Any]]
    sync_count: int  # DatasetSyncCount of the first page
    last_modified_by: str | None
    merged: list[str]
    exists: bool
    deleted_after: bool  # DatasetDeletedAfterRequestedSyncCount


def epoch(value: Any) -> float | None:
    """A wire timestamp as epoch seconds (the JSON protocols send numbers)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return value  # type: ignore[return-value] - an int stays an int: it renders as sent
    try:
        return float(value)
    except (TypeError, ValueError):
        from botocore.utils import parse_timestamp

        return parse_timestamp(value).timestamp()


def _raw_timestamp(value: Any) -> Any:
    return value


class Source:
    def __init__(
        self,
        options: SourceOptions,
        stats: CallStats,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.options = options
        self.stats = stats
        self._sleep = sleep
        self.pool_id = options.pool_id
        self.where = "AWS" if options.endpoint == "aws" else options.endpoint
        endpoint = None if options.endpoint == "aws" else options.endpoint
        if endpoint is not None:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise TransferError(
                    f"--from must be an http:// or https:// URL, or 'aws', not {endpoint!r}"
                )
        region = options.region or options.pool_id.split(":", 1)[0]
        core = botocore.session.Session()
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=_raw_timestamp
        )
        try:
            session = boto3.Session(
                profile_name=options.profile,
                aws_access_key_id=options.access_key_id,
                aws_secret_access_key=options.secret_access_key,
                aws_session_token=options.session_token,
                region_name=region,
                botocore_session=core,
            )
        except ProfileNotFound as exc:
            raise TransferError(str(exc)) from None
        if session.get_credentials() is None:
            raise TransferError(
                "no AWS credentials for the source: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, use --profile, or give --access-key-id and "
                "--secret-access-key"
            )
        config = Config(
            retries={"total_max_attempts": 1},  # retried here, with the throttling counted
            max_pool_connections=options.concurrency + 4,
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="cogsync-import",
        )
        try:
            self.sync = session.client("cognito-sync", endpoint_url=endpoint, config=config)
            self.identity = session.client(
                "cognito-identity", endpoint_url=endpoint, config=config
            )
        except (ValueError, BotoCoreError) as exc:
            raise TransferError(f"cannot use the source endpoint {endpoint!r}: {exc}") from None

    # --- calls --------------------------------------------------------------------

    def call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        """One API call, retried while the source throttles or fails for a moment."""
        method = getattr(client, operation)
        attempt = 0
        while True:
            self.stats.add(requests=1)
            try:
                return method(**params)  # type: ignore[no-any-return]
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                message = str(error.get("Message", "")) or str(exc)
                if code in THROTTLING or status == 429:
                    kind = "throttled"
                elif code in TRANSIENT or status >= 500:
                    kind = "retried"
                elif code in REFUSED:
                    raise TransferError(
                        f"the source at {self.where} refused the credentials ({code}: {message})"
                    ) from None
                else:
                    raise SourceError(code, message) from None
                failure = f"{code}: {message}"
            except (NoCredentialsError, PartialCredentialsError) as exc:
                raise TransferError(f"no usable AWS credentials for the source: {exc}") from None
            except ParamValidationError as exc:
                raise TransferError(f"the source rejects the request: {exc}") from None
            except (BotoConnectionError, HTTPClientError) as exc:
                kind, failure = "retried", str(exc)
            attempt += 1
            if attempt > self.options.max_retries:
                if kind == "throttled":
                    raise TransferError(
                        f"the source at {self.where} still throttles after "
                        f"{self.options.max_retries} retries ({failure}); lower --concurrency "
                        "and run the same command again to resume"
                    )
                raise TransferError(
                    f"cannot reach the source at {self.where}: {failure}; run the same "
                    "command again to resume"
                )
            delay = random.uniform(
                0, min(self.options.backoff_cap, self.options.backoff_base * 2**attempt)
            )
            self.stats.add(**{kind: 1}, waited=delay)
            self._sleep(delay)

    # --- the pool -------------------------------------------------------------------

    def describe_pool(self) -> dict[str, Any]:
        try:
            return self.call(self.identity, "describe_identity_pool", IdentityPoolId=self.pool_id)
        except SourceError as exc:
            if exc.code == "ResourceNotFoundException":
                raise TransferError(
                    f"the source at {self.where} has no identity pool {self.pool_id}"
                ) from None
            raise TransferError(f"the source at {self.where} refused DescribeIdentityPool: "
                                f"{exc}") from None

    def pool_extras(self) -> tuple[dict[str, Any], dict[str, Any], int | None]:
        """(GetIdentityPoolConfiguration, Events of GetCognitoEvents, SyncSessionsCount)."""
        try:
            configuration = self.call(
                self.sync, "get_identity_pool_configuration", IdentityPoolId=self.pool_id
            )
            events = self.call(self.sync, "get_cognito_events", IdentityPoolId=self.pool_id)
            usage = self.call(
                self.sync, "describe_identity_pool_usage", IdentityPoolId=self.pool_id
            )
        except SourceError as exc:
            raise TransferError(f"the source at {self.where} refused a pool call: {exc}") from None
        sessions = usage.get("IdentityPoolUsage", {}).get("SyncSessionsCount")
        return configuration, events.get("Events") or {}, sessions

    def pool_roles(self) -> tuple[dict[str, str], dict[str, Any]] | None:
        """(Roles, RoleMappings) of GetIdentityPoolRoles; None if the source refuses."""
        try:
            found = self.call(self.identity, "get_identity_pool_roles",
                              IdentityPoolId=self.pool_id)
        except SourceError:
            return None
        return dict(found.get("Roles") or {}), dict(found.get("RoleMappings") or {})

    def principal_tags(self, provider: str) -> tuple[bool, dict[str, str]] | None:
        """(UseDefaults, PrincipalTags) of a provider's map; None if there is none or the
        source refuses."""
        try:
            found = self.call(self.identity, "get_principal_tag_attribute_map",
                              IdentityPoolId=self.pool_id, IdentityProviderName=provider)
        except SourceError:
            return None
        return bool(found.get("UseDefaults")), dict(found.get("PrincipalTags") or {})

    # --- identities -------------------------------------------------------------------

    def identity_page(self, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = dict(
            IdentityPoolId=self.pool_id, MaxResults=IDENTITIES_PAGE, HideDisabled=False
        )
        if token:
            params["NextToken"] = token
        page = self.call(self.identity, "list_identities", **params)
        return page.get("Identities") or [], page.get("NextToken")

    def describe_identity(self, identity_id: str) -> dict[str, Any] | None:
        """The identity's logins and dates; None if the source has or shows no such
        identity (its sync data is imported all the same)."""
        try:
            return self.call(self.identity, "describe_identity", IdentityId=identity_id)
        except SourceError:
            return None

    def _all(self, client: Any, operation: str, member: str, **params: Any) -> list[Any]:
        """The items of every page of a listing that pages with NextToken."""
        found: list[Any] = []
        while True:
            page = self.call(client, operation, **params)
            found += page.get(member) or []
            if not page.get("NextToken"):
                return found
            params["NextToken"] = page["NextToken"]

    def developer_users(self, identity_id: str) -> list[str]:
        """The developer user identifiers linked to the identity."""
        return self._all(self.identity, "lookup_developer_identity",
                         "DeveloperUserIdentifierList", IdentityPoolId=self.pool_id,
                         IdentityId=identity_id, MaxResults=IDENTITIES_PAGE)

    # --- sync data --------------------------------------------------------------------

    def datasets(self, identity_id: str) -> list[dict[str, Any]]:
        return self._all(self.sync, "list_datasets", "Datasets", IdentityPoolId=self.pool_id,
                         IdentityId=identity_id,
                         MaxResults=min(DATASETS_PAGE, self.options.page_size))

    def _pages(
        self, identity_id: str, name: str, last_sync_count: int, page_size: int
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = dict(
            IdentityPoolId=self.pool_id,
            IdentityId=identity_id,
            DatasetName=name,
            LastSyncCount=last_sync_count,
            MaxResults=page_size,
        )
        while True:
            page = self.call(self.sync, "list_records", **params)
            yield page
            if not page.get("NextToken"):
                return
            # The pages of one listing share its sync session.
            params.update(NextToken=page["NextToken"], SyncSessionToken=page["SyncSessionToken"])

    def records(self, identity_id: str, name: str, last_sync_count: int) -> Listing:
        records: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        for page in self._pages(identity_id, name, last_sync_count, self.options.page_size):
            first = first or page
            records += page.get("Records") or []
        assert first is not None
        return Listing(
            records=records,
            sync_count=int(first.get("DatasetSyncCount") or 0),
            last_modified_by=first.get("LastModifiedBy"),
            merged=list(first.get("MergedDatasetNames") or []),
            exists=bool(first.get("DatasetExists", True)),
            deleted_after=bool(first.get("DatasetDeletedAfterRequestedSyncCount")),
        )

    def deleted_after(self, identity_id: str, name: str, sync_count: int) -> bool:
        """Whether the source says a dataset of this name was deleted at a sync count of
        at least ``sync_count`` (its DatasetDeletedAfterRequestedSyncCount)."""
        page = next(self._pages(identity_id, name, sync_count, 1))
        return bool(page.get("DatasetDeletedAfterRequestedSyncCount"))

    def merged_names(self, identity_id: str, name: str, sync_count: int) -> list[str]:
        """MergedDatasetNames of a dataset, from one short page."""
        page = next(self._pages(identity_id, name, sync_count, 1))
        return list(page.get("MergedDatasetNames") or [])

    def deletion_count(self, identity_id: str, name: str, known: int, upper: int | None) -> int:
        """The highest sync count n >= ``known`` for which the source reports a deletion
        after n (``deleted_after(known)`` is true): the count the dataset had when it
        was deleted. Searches by doubling, then halving; ``upper`` bounds it."""
        low, high = known, None  # deleted_after(low) holds; deleted_after(high) does not
        step = max(1, known)
        while high is None:
            probe = low + step
            if upper is not None and probe > upper:
                probe = upper
                if probe <= low:
                    return low
            if self.deleted_after(identity_id, name, probe):
                low = probe
                step *= 2
                if upper is not None and low >= upper:
                    return low
            else:
                high = probe
        while high - low > 1:
            middle = (low + high) // 2
            if self.deleted_after(identity_id, name, middle):
                low = middle
            else:
                high = middle
        return low
