"""Records as the JSON documents the API sends (the model's ``Record`` shape).

A record version never changes once written: its document is rendered once, when it is
written, stored beside it, and sent as it is by every later ListRecords, which then does
no per-record work in Python at all.
"""

from __future__ import annotations

from typing import Any

import orjson

from cogsync.domain import Record


def record_document(
    key: str,
    value: str | None,
    sync_count: int,
    last_modified_date: float,
    last_modified_by: str | None,
    device_last_modified_date: float | None,
) -> bytes:
    """The document of one record version (members without a value are left out)."""
    return orjson.dumps({
        "Key": key,
        "SyncCount": sync_count,
        **_after_count(value, last_modified_date, last_modified_by, device_last_modified_date),
    })


def _after_count(
    value: str | None,
    last_modified_date: float,
    last_modified_by: str | None,
    device_last_modified_date: float | None,
) -> dict[str, Any]:
    """The members a document has after its SyncCount, in order."""
    members: dict[str, Any] = {"LastModifiedDate": last_modified_date}
    if value is not None:
        members["Value"] = value
    if last_modified_by is not None:
        members["LastModifiedBy"] = last_modified_by
    if device_last_modified_date is not None:
        members["DeviceLastModifiedDate"] = device_last_modified_date
    return members


def documents_of(records: list[Record]) -> list[bytes]:
    """The records' documents: the ones rendered when written, or rendered now."""
    return [r.document if r.document is not None else record_document(*r[:6]) for r in records]


def documents_array(documents: list[bytes]) -> orjson.Fragment:
    """A JSON array of stored documents, spliced into a response without parsing them;
    the documents are copied once (the brackets go onto the first and the last)."""
    if len(documents) < 2:
        return orjson.Fragment(b"[" + documents[0] + b"]" if documents else b"[]")
    return orjson.Fragment(
        b",".join([b"[" + documents[0], *documents[1:-1], documents[-1] + b"]"]))


def document_position(document: bytes) -> tuple[int, str]:
    """(SyncCount, Key) of a stored document: where a listing continues after it."""
    members = orjson.loads(document)
    return int(members["SyncCount"]), str(members["Key"])


def document_parts(
    key: str,
    value: str | None,
    last_modified_date: float,
    last_modified_by: str | None,
    device_last_modified_date: float | None,
) -> tuple[bytes, bytes]:
    """The document of a record version around its sync count, for a store that learns
    the count only when it writes: ``head + str(count).encode() + tail`` is exactly
    :func:`record_document` of that count."""
    head = b'{"Key":' + orjson.dumps(key) + b',"SyncCount":'
    members = _after_count(value, last_modified_date, last_modified_by, device_last_modified_date)
    return head, b"," + orjson.dumps(members)[1:]
