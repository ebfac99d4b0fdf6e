"""Group commit on a real SQLite file: writes of one loop turn share a transaction, each
fails alone, none is acknowledged before the COMMIT, and a failed COMMIT applies nothing.

(The whole suite also runs every server with group commit on; this file drives the
store directly to reach what a client cannot provoke, such as a COMMIT that fails.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cogsync.store.database import Store, Tx
from cogsync.store.engine import make_engine, migrate
from tests.server import independent_of_backend

pytestmark = independent_of_backend


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    migrate(engine)
    store = Store(engine)
    with store.write() as tx:
        tx.create_account("123456789012", 0.0)
    yield store
    store.close()


def _ids(tx: Tx) -> set[str]:
    return {row[0] for row in tx.driver.execute("SELECT account_id FROM accounts").fetchall()}


def _account_ids(store: Store) -> set[str]:
    with store.read() as tx:
        return _ids(tx)


def _write_account(store: Store, account_id: str) -> None:
    with store.write() as tx:
        tx.create_account(account_id, 1.0)


async def _request(store: Store, account_id: str, fail: bool = False) -> str:
    """What a request does: a write (inline, on the loop), then wait until it is durable."""
    try:
        with store.write() as tx:
            tx.create_account(account_id, 1.0)
            if fail:
                raise ValueError("this write fails")
    except ValueError:
        return "failed alone"
    await store.durable()
    return "committed"


def test_writes_of_one_turn_share_a_commit_and_fail_alone(store: Store) -> None:
    async def main() -> list[str]:
        store.group_commits(asyncio.get_running_loop())
        return list(await asyncio.gather(
            _request(store, "100000000001"),
            _request(store, "100000000002", fail=True),
            _request(store, "100000000003"),
        ))

    assert asyncio.run(main()) == ["committed", "failed alone", "committed"]
    assert _account_ids(store) == {"123456789012", "100000000001", "100000000003"}


def test_nothing_is_visible_or_told_before_the_commit(store: Store) -> None:
    told: list[str] = []

    async def main() -> tuple[set[str], set[str], list[str]]:
        store.group_commits(asyncio.get_running_loop())
        with store.write() as tx:
            tx.create_account("100000000004", 1.0)
        store.after_commit(lambda: told.append("after commit"))
        with store.read() as tx:  # this request reads its own write...
            own = _ids(tx)
        # ...no one else does yet (another thread reads while this turn is still running).
        with ThreadPoolExecutor(1) as other:
            others = other.submit(_account_ids, store).result()
        told_before = list(told)
        await store.durable()
        return own, others, told_before

    own, others, told_before = asyncio.run(main())
    assert "100000000004" in own
    assert "100000000004" not in others
    assert told_before == [] and told == ["after commit"]
    assert "100000000004" in _account_ids(store)


def test_a_failed_commit_fails_every_write_of_the_batch_and_applies_none(store: Store) -> None:
    async def breaking_request() -> str:
        # A foreign key checked at COMMIT: the COMMIT of the whole batch fails.
        with store.write() as tx:
            tx.driver.execute("PRAGMA defer_foreign_keys = ON")
            tx.driver.execute(
                "INSERT INTO access_keys (access_key_id, account_id, secret_ciphertext, enabled, "
                "created_at) VALUES ('AKNOACCOUNT', '999999999999', x'00', 1, 0)"
            )
        await store.durable()
        return "committed"

    async def main() -> list[object]:
        store.group_commits(asyncio.get_running_loop())
        outcomes = await asyncio.gather(
            _request(store, "100000000005"), breaking_request(), _request(store, "100000000006"),
            return_exceptions=True,
        )
        # The next turn starts a new batch on a healthy connection.
        after = await _request(store, "100000000007")
        return [*outcomes, after]

    outcomes = asyncio.run(main())
    assert all(isinstance(o, Exception) and "FOREIGN KEY" in str(o) for o in outcomes[:3])
    assert outcomes[3] == "committed"
    assert _account_ids(store) == {"123456789012", "100000000007"}
    with store.read() as tx:
        assert tx.get_access_key("AKNOACCOUNT") is None


def test_other_threads_write_as_before(store: Store) -> None:
    async def main() -> None:
        store.group_commits(asyncio.get_running_loop())
        await asyncio.to_thread(_write_account, store, "100000000008")

    asyncio.run(main())
    assert "100000000008" in _account_ids(store)
