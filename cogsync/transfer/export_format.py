"""The export format: JSON lines, one object per line, optionally gzip-compressed.

Line 1 is the header ``{"format": "cogsync-export", "version": 1, ...}``; then one line
per row, ``{"type": <kind>, <field>: <value>, ...}``, in the order of KINDS; the last
line is ``{"type": "end", "counts": {<kind>: n, ...}}``, so a cut-off file is noticed.
A ``record`` line belongs to the ``dataset`` line before it. Fields are the columns of
the table each kind names, with these encodings: times are epoch seconds (JSON numbers),
binary values base64 (standard alphabet), JSON configuration as JSON objects. The field
by field description is in docs/migration.md; a test keeps the two in step.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import os
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from cogsync.transfer.errors import TransferError

FORMAT = "cogsync-export"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Field:
    name: str
    codec: str  # text, int, float, bool, json, base64; "?" suffix: may be null


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    fields: tuple[Field, ...]


def _fields(spec: str) -> tuple[Field, ...]:
    return tuple(Field(*item.split(":")) for item in spec.split())


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("account", "accounts", _fields("account_id:text created_at:float")),
        Kind(
            "access_key",
            "access_keys",
            _fields(
                "access_key_id:text account_id:text secret_ciphertext:base64 enabled:bool "
                "created_at:float last_used_at:float?"
            ),
        ),
        Kind("server_key", "server_keys", _fields("name:text sealed:base64 created_at:float")),
        Kind(
            "pool",
            "identity_pools",
            _fields(
                "identity_pool_id:text account_id:text name:text created_at:float events:json "
                "push_sync:json? cognito_streams:json? sync_sessions_count:int "
                "allow_unauthenticated:bool allow_classic_flow:bool "
                "developer_provider_name:text? identity_attributes:json"
            ),
        ),
        Kind(
            "pool_roles",
            "identity_pool_roles",
            _fields("identity_pool_id:text roles:json role_mappings:json updated_at:float"),
        ),
        Kind(
            "principal_tag_map",
            "principal_tag_maps",
            _fields(
                "identity_pool_id:text provider:text use_defaults:bool principal_tags:json "
                "updated_at:float"
            ),
        ),
        Kind(
            "identity",
            "identities",
            _fields(
                "identity_pool_id:text identity_id:text created_at:float last_modified_at:float"
            ),
        ),
        Kind(
            "login",
            "identity_logins",
            _fields(
                "identity_pool_id:text provider:text subject:text identity_id:text "
                "created_at:float"
            ),
        ),
        Kind(
            "inaccessible_identity",
            "inaccessible_identities",
            _fields("identity_pool_id:text identity_id:text since:float"),
        ),
        Kind(
            "dataset",
            "datasets",
            _fields(
                "identity_pool_id:text identity_id:text name:text sync_count:int "
                "creation_date:float last_modified_date:float last_modified_by:text? "
                "data_storage:int num_records:int merged_into:text?"
            ),
        ),
        Kind(
            "record",
            "records",
            _fields(
                "key:text value:text? sync_count:int last_modified_date:float "
                "last_modified_by:text? device_last_modified_date:float?"
            ),
        ),
        Kind(
            "dataset_deletion",
            "dataset_deletions",
            _fields(
                "identity_pool_id:text identity_id:text name:text deleted_sync_count:int "
                "deleted_at:float"
            ),
        ),
        Kind(
            "device",
            "devices",
            _fields(
                "identity_pool_id:text device_id:text identity_id:text platform:text token:text "
                "enabled:bool created_at:float endpoint_arn:text?"
            ),
        ),
        Kind(
            "subscription",
            "subscriptions",
            _fields(
                "identity_pool_id:text identity_id:text dataset_name:text device_id:text "
                "created_at:float"
            ),
        ),
    )
}
# A record line may carry the stored document when it is not the one its fields render.
RECORD_DOCUMENT = "document"


def _encode(codec: str, value: Any) -> Any:
    if value is None:
        return None
    if codec == "bool":
        return bool(value)
    if codec == "base64":
        return base64.b64encode(bytes(value)).decode()
    if codec == "json":
        return orjson.loads(value)
    if codec == "float":
        return float(value)
    return value


def _decode(codec: str, value: Any) -> Any:
    """The column value of a line's field; ValueError when the field has the wrong type."""
    optional = codec.endswith("?")
    codec = codec.rstrip("?")
    if value is None:
        if optional:
            return None
        raise ValueError("must not be null")
    if codec == "text" and isinstance(value, str):
        return value
    if codec == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if codec == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if codec == "bool" and isinstance(value, bool):
        return value
    if codec == "json" and isinstance(value, dict):
        return orjson.dumps(value).decode()
    if codec == "base64" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("is not base64") from None
    raise ValueError(f"must be {codec}")


def to_line(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"type": kind.name}
    for f in kind.fields:
        line[f.name] = _encode(f.codec.rstrip("?"), row[f.name])
    return line


def to_row(kind: Kind, line: dict[str, Any], number: int) -> dict[str, Any]:
    """The table row a line stands for; TransferError naming the line if it is malformed."""
    row: dict[str, Any] = {}
    for f in kind.fields:
        if f.name not in line and not f.codec.endswith("?"):  # optional: may be left out
            raise TransferError(f"line {number}: {kind.name} has no field {f.name!r}")
        try:
            row[f.name] = _decode(f.codec, line.get(f.name))
        except ValueError as exc:
            raise TransferError(f"line {number}: {kind.name} field {f.name!r} {exc}") from None
    return row


def header(scope: str, pool_id: str | None, master_key_id: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "scope": scope,
        "pool": pool_id,
        "master_key_id": master_key_id,
    }


def check_header(line: dict[str, Any] | None, source: str) -> dict[str, Any]:
    if not isinstance(line, dict) or line.get("format") != FORMAT:
        raise TransferError(f"{source} is not a cogsync export (its first line is no header)")
    version = line.get("version")
    if version != VERSION:
        raise TransferError(
            f"{source} is in export format version {version!r}, which this cogsync does not "
            f"know (it reads version {VERSION}); restore it with the cogsync that wrote it or "
            "a newer one"
        )
    if line.get("scope") not in ("database", "pool") or (
        line["scope"] == "pool" and not isinstance(line.get("pool"), str)
    ):
        raise TransferError(f"{source}: the header's scope is not valid")
    return line


class LineWriter:
    """Writes lines to a binary stream and counts them by kind."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self.counts: Counter[str] = Counter()

    def write(self, line: dict[str, Any]) -> None:
        self._stream.write(orjson.dumps(line) + b"\n")
        if line.get("type") is not None:
            self.counts[line["type"]] += 1

    def end(self) -> None:
        counts = {name: self.counts[name] for name in KINDS if self.counts[name]}
        self._stream.write(orjson.dumps({"type": "end", "counts": counts}) + b"\n")


@contextmanager
def open_output(path: str, compress: bool) -> Iterator[IO[bytes]]:
    """The output stream: ``-`` is standard output; a file is written beside its final
    name and moved there only when the export is complete. Gzip (with no name or time in
    its header, so equal exports are equal files) when asked or when the name ends .gz."""
    compress = compress or path.endswith(".gz")
    if path == "-":
        raw: IO[bytes] = sys.stdout.buffer
        partial = None
    else:
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        try:
            raw = open(partial, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise TransferError(f"cannot write {path}: {exc.strerror}") from None
    try:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=6) as zipped:
                yield zipped  # type: ignore[misc]
        else:
            yield raw
        raw.flush()
        if partial is not None:
            os.fsync(raw.fileno())
    except BaseException:
        if partial is not None:
            raw.close()
            partial.unlink(missing_ok=True)
        raise
    if partial is not None:
        raw.close()
        os.replace(partial, path)


@contextmanager
def open_input(path: str) -> Iterator[Iterator[tuple[int, dict[str, Any]]]]:
    """The lines of an export (gzip recognised by its first bytes) as (number, object)."""
    try:
        raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    try:
        buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
        first = buffered.peek(2)[:2]  # type: ignore[attr-defined]
        stream: IO[bytes] = gzip.GzipFile(fileobj=buffered) if first == GZIP_MAGIC else buffered
        yield _lines(stream, path)
    finally:
        if path != "-":
            raw.close()


def _lines(stream: IO[bytes], path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    try:
        for number, raw_line in enumerate(stream, start=1):  # noqa: B007 - number used below
            try:
                line = orjson.loads(raw_line)
            except orjson.JSONDecodeError:
                raise TransferError(f"{path}: line {number} is not JSON") from None
            if not isinstance(line, dict):
                raise TransferError(f"{path}: line {number} is not a JSON object")
            yield number, line
    except (OSError, EOFError, zlib.error) as exc:
        raise TransferError(
            f"{path}: damaged or cut-off data after line {number} ({exc})"
        ) from None

