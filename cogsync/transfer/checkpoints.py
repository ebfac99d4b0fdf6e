"""Where an import stands: a small SQLite file of its own beside the target.

It holds the identities listed from the source (so a resumed run neither lists them again
nor depends on a NextToken that may have expired), which of them are done in which pass,
and, per dataset, the sync count and date last imported (what ``--since`` and deletions
are judged by). The target's writes are idempotent, so a checkpoint written just after
them is enough: a crash in between costs a second look at one identity, nothing more.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cogsync.transfer.errors import TransferError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    identity_id TEXT PRIMARY KEY,
    seen_pass INTEGER NOT NULL,     -- the last pass whose listing named it
    done_pass INTEGER NOT NULL,     -- the last pass that imported it (0: none)
    described INTEGER NOT NULL,     -- 1: listed with its dates and logins
    created_at REAL, last_modified_at REAL,
    logins TEXT NOT NULL            -- JSON list of login provider names
);
CREATE INDEX IF NOT EXISTS identities_todo ON identities (seen_pass, done_pass, identity_id);
CREATE TABLE IF NOT EXISTS datasets (
    identity_id TEXT NOT NULL, name TEXT NOT NULL,
    sync_count INTEGER NOT NULL, last_modified_date REAL NOT NULL,
    PRIMARY KEY (identity_id, name)
);
"""


@dataclass(frozen=True)
class IdentityEntry:
    identity_id: str
    described: bool
    created_at: float | None
    last_modified_at: float | None
    logins: tuple[str, ...]


@dataclass(frozen=True)
class Imported:
    """A dataset as the last import left it on the target."""

    sync_count: int
    last_modified_date: float


class ImportState:
    """Thread-safe: the workers of an import share one connection under a lock."""

    def __init__(self, path: Path | None):
        try:
            self._db = sqlite3.connect(
                ":memory:" if path is None else str(path),
                check_same_thread=False,
                isolation_level=None,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise TransferError(f"cannot use the import state file {path}: {exc}") from None
        self._lock = threading.Lock()
        self.path = path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _write(self, statements: list[tuple[str, Iterable[Any]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for sql, params in statements:
                    self._db.execute(sql, tuple(params))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- meta -------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set(self, key: str, value: str) -> tuple[str, Iterable[Any]]:
        return ("INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def set(self, **values: str) -> None:
        self._write([self._set(k, v) for k, v in values.items()])

    def bind(self, source: str, source_pool: str, target_pool: str, *,
             check_only: bool = False) -> None:
        """Ties a new state file to one import (unless ``check_only``); refuses a file
        made for another."""
        wanted = {"source": source, "source_pool": source_pool, "target_pool": target_pool}
        known = {key: self.get(key) for key in wanted}
        if all(value is None for value in known.values()):
            if not check_only:
                self.set(**wanted)
            return
        if known != wanted:
            raise TransferError(
                f"the state file {self.path} belongs to the import of {known['source_pool']} "
                f"from {known['source']} into {known['target_pool']}; give another --state"
            )

    @property
    def current_pass(self) -> int:
        return int(self.get("pass") or 0)

    def listed(self, pass_number: int) -> bool:
        return self.get(f"listed:{pass_number}") == "1"

    def listing_token(self, pass_number: int) -> str | None:
        return self.get(f"token:{pass_number}")

    # --- identities -------------------------------------------------------------------

    def save_page(self, pass_number: int, entries: list[IdentityEntry],
                  next_token: str | None) -> None:
        """One page of the listing, with where the listing goes on, in one commit."""
        statements: list[tuple[str, Iterable[Any]]] = [
            (
                "INSERT INTO identities (identity_id, seen_pass, done_pass, described, "
                "created_at, last_modified_at, logins) VALUES (?, ?, 0, ?, ?, ?, ?) "
                "ON CONFLICT (identity_id) DO UPDATE SET seen_pass = excluded.seen_pass, "
                "described = excluded.described, created_at = excluded.created_at, "
                "last_modified_at = excluded.last_modified_at, logins = excluded.logins",
                (e.identity_id, pass_number, int(e.described), e.created_at,
                 e.last_modified_at, orjson.dumps(list(e.logins)).decode()),
            )
            for e in entries
        ]
        if next_token:
            statements.append(self._set(f"token:{pass_number}", next_token))
        else:
            statements.append(self._set(f"listed:{pass_number}", "1"))
        self._write(statements)

    def restart_listing(self, pass_number: int) -> None:
        self._write([("DELETE FROM meta WHERE key = ?", (f"token:{pass_number}",))])

    def counts(self, pass_number: int) -> tuple[int, int]:
        """(identities listed in this pass, of which done)."""
        rows = self._rows(
            "SELECT count(*), coalesce(sum(done_pass >= seen_pass), 0) FROM identities "
            "WHERE seen_pass = ?", (pass_number,))
        return int(rows[0][0]), int(rows[0][1])

    def todo(self, pass_number: int, after: str, limit: int) -> list[IdentityEntry]:
        rows = self._rows(
            "SELECT identity_id, described, created_at, last_modified_at, logins "
            "FROM identities WHERE seen_pass = ? AND done_pass < ? AND identity_id > ? "
            "ORDER BY identity_id LIMIT ?", (pass_number, pass_number, after, limit))
        return [IdentityEntry(r[0], bool(r[1]), r[2], r[3], tuple(orjson.loads(r[4])))
                for r in rows]

    def gone(self, pass_number: int, after: str, limit: int) -> list[str]:
        """Identities imported before that this pass's listing no longer names."""
        rows = self._rows(
            "SELECT identity_id FROM identities WHERE seen_pass < ? AND done_pass > 0 "
            "AND identity_id > ? ORDER BY identity_id LIMIT ?", (pass_number, after, limit))
        return [r[0] for r in rows]

    def forget(self, identity_id: str) -> None:
        self._write([("DELETE FROM identities WHERE identity_id = ?", (identity_id,)),
                     ("DELETE FROM datasets WHERE identity_id = ?", (identity_id,))])

    # --- datasets -----------------------------------------------------------------------

    def datasets_of(self, identity_id: str) -> dict[str, Imported]:
        rows = self._rows(
            "SELECT name, sync_count, last_modified_date FROM datasets WHERE identity_id = ?",
            (identity_id,))
        return {r[0]: Imported(int(r[1]), float(r[2])) for r in rows}

    def finish(self, identity_id: str, pass_number: int,
               datasets: dict[str, Imported]) -> None:
        """The identity is done in this pass; its datasets stand as given."""
        statements: list[tuple[str, Iterable[Any]]] = [
            ("DELETE FROM datasets WHERE identity_id = ?", (identity_id,)),
            ("UPDATE identities SET done_pass = ? WHERE identity_id = ?",
             (pass_number, identity_id)),
        ]
        statements += [
            ("INSERT INTO datasets (identity_id, name, sync_count, last_modified_date) "
             "VALUES (?, ?, ?, ?)", (identity_id, name, d.sync_count, d.last_modified_date))
            for name, d in datasets.items()
        ]
        self._write(statements)
