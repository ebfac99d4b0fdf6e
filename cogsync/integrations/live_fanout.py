"""Live-channel fan-out across replicas through PostgreSQL LISTEN/NOTIFY, on demand.

A change is announced with ``pg_notify`` on its identity's own channel
(``hot_statements.live_channel``), inside the change's own statement or transaction, so
the announcement goes out if and only if the change commits, at no extra round trip. A
replica LISTENs to an identity's channel only while a live client of that identity is
connected to it, and lists the channel in ``live_listeners`` meanwhile; a change is
announced only on a listed channel. So a change of an identity no one watches costs no
NOTIFY at all (a NOTIFY serializes the commits of all notifying transactions), a replica
with no live subscriber for an identity spends nothing on its changes, and an idle
replica nothing at all (its listener thread sleeps in ``select`` until a notification or
a new subscription arrives). On SQLite there is one process and the broker is fed
directly, after the commit.

A subscription is ready once its channel is listed and LISTENed to, and every
transaction that was running when it was listed has ended: a writer that did not see the
listing has committed by then, so the client's resync after ``: connected`` sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import threading
import time
from dataclasses import asdict

import orjson
import psycopg
from sqlalchemy.engine import make_url

from cogsync.integrations.live import LiveBroker
from cogsync.store import text_codec
from cogsync.store.database import Tx
from cogsync.store.hot_statements import live_channel
from cogsync.sync.effects import Change

log = logging.getLogger("cogsync.live")
OLDER_WRITERS_WAIT = 2.0  # seconds at most (a statement's own timeout is 30 s)
Key = tuple[str, str]


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
        self._lock = threading.Lock()
        self._wanted: set[str] = set()  # channels with a subscriber here
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}  # until LISTENed
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        broker.watcher = self

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
            channel = live_channel(change.identity_pool_id, change.identity_id)
            tx.notify(channel, orjson.dumps(asdict(change)).decode())

    # --- called by the broker, on the event loop ----------------------------------

    def want(self, key: Key) -> asyncio.Future[None]:
        """The first subscriber of ``key`` arrived: LISTEN; done once it is in place."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        channel = live_channel(*key)
        with self._lock:
            self._wanted.add(channel)
            self._waiting.setdefault(channel, []).append(done)
        self._wake()
        return done

    def unwant(self, key: Key) -> None:
        """The last subscriber of ``key`` left: UNLISTEN."""
        channel = live_channel(*key)
        with self._lock:
            self._wanted.discard(channel)
            self._waiting.pop(channel, None)  # no one waits for it any more
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake is pending
            os.write(self._wake_write, b"x")

    # --- the listener thread --------------------------------------------------------

    def listen_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking: run it on a thread of its own. Reconnects after failures."""
        self._loop = loop
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    self._serve(conn)
            except (psycopg.Error, OSError):
                log.warning(
                    "live channel listener lost its connection; reconnecting", exc_info=True
                )
                self._stop.wait(1.0)

    def _serve(self, conn: psycopg.Connection) -> None:
        # Listings of listeners that are gone (this replica's before a reconnect, a
        # crashed replica's): their backends no longer exist.
        conn.execute("DELETE FROM live_listeners WHERE backend_pid NOT IN "
                     "(SELECT pid FROM pg_stat_activity) OR backend_pid = pg_backend_pid()")
        listening: set[str] = set()
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_read, selectors.EVENT_READ, "wake")
            selector.register(conn.fileno(), selectors.EVENT_READ, "database")
            while not self._stop.is_set():
                self._follow_wanted(conn, listening)
                self._hand_on(conn)
                for found, _ in selector.select():
                    if found.data == "wake":
                        os.read(self._wake_read, 4096)

    def _follow_wanted(self, conn: psycopg.Connection, listening: set[str]) -> None:
        with self._lock:
            wanted = set(self._wanted)
        added = sorted(wanted - listening)
        for channel in added:
            conn.execute("INSERT INTO live_listeners (channel, backend_pid, since) "
                         "VALUES (%s, pg_backend_pid(), extract(epoch FROM now())) "
                         "ON CONFLICT DO NOTHING", (channel,))
            conn.execute(f'LISTEN "{channel}"')
            listening.add(channel)
        if added:
            self._wait_for_older_writers(conn)
        for channel in sorted(listening - wanted):
            conn.execute(f'UNLISTEN "{channel}"')
            conn.execute("DELETE FROM live_listeners WHERE channel = %s "
                         "AND backend_pid = pg_backend_pid()", (channel,))
            listening.discard(channel)
        with self._lock:
            ready = [self._waiting.pop(c) for c in list(self._waiting) if c in listening]
        for futures in ready:
            for future in futures:
                self._call(lambda f=future: f.done() or f.set_result(None))

    @staticmethod
    def _wait_for_older_writers(conn: psycopg.Connection) -> None:
        """Until every transaction running now has ended (a writer that checked for
        listeners before the new listing commits before the subscription is ready)."""
        row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
        horizon = row[0] if row else None
        deadline = time.monotonic() + OLDER_WRITERS_WAIT
        while horizon is not None and time.monotonic() < deadline:
            done = conn.execute(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= %s::xid8", (horizon,)
            ).fetchone()
            if done and done[0]:
                return
            time.sleep(0.002)

    def _hand_on(self, conn: psycopg.Connection) -> None:
        """Every notification received so far (none waited for)."""
        for notice in conn.notifies(timeout=0):
            members = orjson.loads(notice.payload)  # built in SQL: text in stored form
            change = Change(**{k: text_codec.decode(v) if isinstance(v, str) else v
                               for k, v in members.items()})
            self._call(lambda c=change: self.broker.fan_out(c))

    def _call(self, fn: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)  # type: ignore[arg-type]

    def stop(self) -> None:
        self._stop.set()
        self._wake()
