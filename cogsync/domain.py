"""The domain's data: plain values the service works with and the store persists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")


class Record(NamedTuple):
    """A record; a named tuple because ListRecords makes thousands of them a second."""

    key: str
    value: str | None  # None: removed (a tombstone)
    sync_count: int
    last_modified_date: float
    last_modified_by: str | None
    device_last_modified_date: float | None
    document: bytes | None = None  # the JSON the API sends (sync/documents.py), when read

    @property
    def storage(self) -> int:
        """Bytes this record counts toward DataStorage (tombstones count nothing)."""
        if self.value is None:
            return 0
        return len(self.key.encode()) + len(self.value.encode())


@dataclass(slots=True)
class Dataset:
    dataset_id: int
    identity_pool_id: str
    identity_id: str
    name: str
    sync_count: int
    creation_date: float
    last_modified_date: float
    last_modified_by: str | None
    data_storage: int
    num_records: int


@dataclass(frozen=True, slots=True)
class IdentityPool:
    identity_pool_id: str
    account_id: str
    name: str
    created_at: float
    events: dict[str, str] = field(default_factory=dict)
    push_sync: dict[str, Any] | None = None
    cognito_streams: dict[str, Any] | None = None
    sync_sessions_count: int = 0
    # Cognito Identity attributes
    allow_unauthenticated: bool = False
    allow_classic_flow: bool = False
    developer_provider_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # the other IdentityPool members


@dataclass(frozen=True, slots=True)
class Identity:
    identity_id: str
    identity_pool_id: str
    created_at: float
    last_modified_at: float
    logins: tuple[tuple[str, str], ...] = ()  # (provider, subject)


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    identity_pool_id: str
    identity_id: str
    platform: str
    token: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class PoolUsage:
    identity_pool_id: str
    sync_sessions_count: int
    data_storage: int
    last_modified_date: float | None


@dataclass(frozen=True, slots=True)
class IdentityUsage:
    identity_pool_id: str
    identity_id: str
    dataset_count: int
    data_storage: int
    last_modified_date: float | None


class RecordPatch(NamedTuple):
    """One patch of an UpdateRecords call (a named tuple: a call carries many)."""

    op: str  # "replace" or "remove"
    key: str
    value: str | None
    sync_count: int
    device_last_modified_date: float | None


@dataclass(frozen=True, slots=True)
class RecordsPage:
    documents: list[bytes]  # the records' stored JSON documents, in listing order
    next_token: str | None
    dataset_sync_count: int
    dataset_exists: bool
    deleted_after_requested_sync_count: bool
    last_modified_by: str | None
    merged_dataset_names: list[str]
    sync_session_token: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None
