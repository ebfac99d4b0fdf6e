"""Live-channel fan-out across replicas through PostgreSQL LISTEN/NOTIFY.

On PostgreSQL every change is announced with ``pg_notify('cogsync_live', ...)`` inside
its own transaction, so the announcement goes out if and only if the change commits, at
no extra round trip. Every replica listens and hands what it hears to its own live
broker, so a client connected to any replica hears changes made through any other. On
SQLite there is one process and the broker is fed directly, after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import asdict

import orjson
import psycopg
from sqlalchemy.engine import make_url

from cogsync.integrations.live import LiveBroker
from cogsync.store.database import Tx
from cogsync.sync.effects import Change

log = logging.getLogger("cogsync.live")
CHANNEL = "cogsync_live"


def _libpq_url(sqlalchemy_url: str) -> tuple[str, str | None]:
    """A URL psycopg accepts, and the ``options`` (search_path) it must keep."""
    url = make_url(sqlalchemy_url)
    options = url.query.get("options")
    plain = url.set(drivername="postgresql", query={})
    options_text = options if isinstance(options, str) or options is None else " ".join(options)
    return plain.render_as_string(hide_password=False), options_text


class PostgresFanout:
    def __init__(self, database_url: str, broker: LiveBroker):
        self.url, self.options = _libpq_url(database_url)
        self.broker = broker
        self._stop = threading.Event()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=5,
            **({"options": self.options} if self.options else {}),
        )

    @staticmethod
    def announce(tx: Tx, change: Change) -> None:
        """Called inside the change's transaction: delivered when it commits."""
        if change.dataset:
            tx.notify(CHANNEL, orjson.dumps(asdict(change)).decode())

    def listen_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking: run it on a thread of its own. Reconnects after failures."""
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():  # wake each second to see a stop
                        for notice in conn.notifies(timeout=1.0):
                            change = Change(**orjson.loads(notice.payload))
                            loop.call_soon_threadsafe(self.broker.fan_out, change)
            except psycopg.Error:
                log.warning(
                    "live channel listener lost its connection; reconnecting", exc_info=True
                )
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
