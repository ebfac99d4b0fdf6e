"""What an import did (the final report, also as JSON) and how far it is (the progress bar)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cogsync.transfer.source import CallStats

SKIPPED_LISTED = 200  # the report names this many skipped items; the reasons count all


@dataclass
class Tally:
    """What the import of one identity did."""

    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, str | None]] = field(default_factory=list)
    without_subject: Counter[str] = field(default_factory=Counter)

    def skip(self, identity: str, dataset: str | None, reason: str) -> None:
        self.skipped.append({"identity": identity, "dataset": dataset, "reason": reason})


@dataclass
class ImportReport:
    source: str
    source_pool: str
    target_pool: str
    dry_run: bool
    stats: CallStats
    pass_number: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    without_subject: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, str | None]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    complete: bool = False
    interrupted: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, tally: Tally) -> None:
        with self._lock:
            self.counts.update(tally.counts)
            self.without_subject.update(tally.without_subject)
            for item in tally.skipped:
                self.reasons[str(item["reason"])] += 1
                if len(self.skipped) < SKIPPED_LISTED:
                    self.skipped.append(item)

    def as_json(self) -> dict[str, Any]:
        c = self.counts
        return {
            "dry_run": self.dry_run,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "error": self.error,
            "source": {"endpoint": self.source, "identity_pool_id": self.source_pool},
            "target_identity_pool_id": self.target_pool,
            "pass": self.pass_number,
            "identities": {
                "listed": c["identities.listed"],
                "imported": c["identities.imported"],
                "already_imported": c["identities.already_imported"],
                "skipped": c["identities.skipped"],
                "gone_from_source": c["identities.gone"],
                "pruned": c["identities.pruned"],
            },
            "datasets": {
                "written": c["datasets.written"],
                "unchanged": c["datasets.unchanged"],
                "deleted": c["datasets.deleted"],
                "skipped": c["datasets.skipped"],
                "merged": c["datasets.merged"],
            },
            "records": {
                "written": c["records.written"],
                "unchanged": c["records.unchanged"],
                "tombstones_written": c["records.tombstones"],
                "removed": c["records.removed"],
            },
            "bytes": c["bytes"],
            "deletions_recorded": c["deletions"],
            "logins": {
                "carried": c["logins.carried"],
                "without_subject": dict(sorted(self.without_subject.items())),
            },
            "pool_settings_written": c["pool.settings"],
            "requests": self.stats.requests,
            "throttled": self.stats.throttled,
            "retried": self.stats.retried,
            "seconds_waited": round(self.stats.waited, 3),
            "seconds": round(time.monotonic() - self.started, 3),
            "skipped_reasons": dict(self.reasons.most_common()),
            "skipped": self.skipped,
            "notes": self.notes,
        }

    def text(self) -> str:
        r = self.as_json()
        ids, ds, rec = r["identities"], r["datasets"], r["records"]
        verb = "would write" if self.dry_run else "wrote"
        state = (
            "complete" if self.complete
            else "interrupted" if self.interrupted
            else "stopped" if self.error
            else "not complete"
        )
        lines = [
            f"cogsync import of {self.source_pool} from {self.source} into "
            f"{self.target_pool}: pass {self.pass_number}, {state}"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            f"  identities: {ids['listed']} listed, {ids['imported']} imported, "
            f"{ids['already_imported']} already imported, {ids['skipped']} skipped, "
            f"{ids['gone_from_source']} gone from the source ({ids['pruned']} pruned)",
            f"  datasets: {verb} {ds['written']}, {ds['unchanged']} unchanged, "
            f"{ds['deleted']} deleted, {ds['skipped']} skipped, {ds['merged']} merged",
            f"  records: {verb} {rec['written']} ({rec['tombstones_written']} tombstones, "
            f"{r['bytes']} bytes), {rec['unchanged']} unchanged, {rec['removed']} removed; "
            f"{r['deletions_recorded']} dataset deletions recorded",
            f"  logins: {r['logins']['carried']} carried"
            + "".join(
                f"; {n} of {provider} without subject"
                for provider, n in r["logins"]["without_subject"].items()
            ),
            f"  source: {r['requests']} requests, {r['throttled']} throttled, "
            f"{r['retried']} retried, {r['seconds']:.1f} s",
        ]
        lines += [f"  skipped ({n}): {reason}" for reason, n in r["skipped_reasons"].items()]
        lines += [f"  note: {note}" for note in self.notes]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s")


class ProgressBar:
    """A live bar on a terminal (rate and time left); elsewhere a line every 10 s."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None):
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._live = enabled and self._stream.isatty()
        self._progress: Progress | None = None
        self._task: Any = None
        self._total: int | None = None
        self._done = 0
        self._description = ""
        self._last_line = 0.0
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def phase(self, description: str, total: int | None, done: int = 0) -> None:
        self.close()
        self._description, self._total, self._done = description, total, done
        self._started = time.monotonic()
        self._base = done
        if not self._enabled:
            return
        if self._live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=Console(file=self._stream),
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n
            if self._progress is not None:
                self._progress.update(self._task, advance=n)
            elif self._enabled and time.monotonic() - self._last_line >= 10:
                self._last_line = time.monotonic()
                self._stream.write(self._plain() + "\n")
                self._stream.flush()

    def _plain(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = (self._done - self._base) / elapsed
        text = f"cogsync import: {self._description}: {self._done}"
        if self._total is not None:
            text += f"/{self._total}"
            if rate > 0:
                text += f", about {int((self._total - self._done) / rate)} s left"
        return text + f" ({rate:,.1f}/s)"

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
