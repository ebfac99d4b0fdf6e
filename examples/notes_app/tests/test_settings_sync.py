"""The app's sync against a real Cognito Sync (cogsync), with the pytest plugin's fixtures
only. Two of these reproduce what apps meet in the field and rarely in tests: another
device writing while an update is on its way (a conflict the app must merge, not loop
on), and throttling in the middle of a sync."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from notes_app import SettingsSync, SyncGaveUp

# The app makes its own clients from the environment: cogsync_env points it at cogsync
# (and COGSYNC_POOL_ID at this test's pool).
pytestmark = pytest.mark.usefixtures("cogsync_env")


@pytest.fixture
def login(cogsync_oidc: Any) -> Callable[..., dict[str, str]]:
    """What a signed-in user's device presents: an id token of the test login provider."""
    return lambda user="alice": {cogsync_oidc.name: cogsync_oidc.token(user)}


def _in_background(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_setting_reaches_the_other_device(login: Callable[..., dict[str, str]]) -> None:
    phone = SettingsSync(login(), device_id="phone")
    laptop = SettingsSync(login(), device_id="laptop")
    assert phone.identity_id == laptop.identity_id  # one user, one identity
    phone.set("theme", "dark")
    phone.synchronize()
    laptop.synchronize()
    assert laptop.values() == {"theme": "dark"}
    laptop.set("theme", None)
    laptop.set("font", "serif")
    laptop.synchronize()
    phone.synchronize()
    assert phone.values() == {"font": "serif"}


def test_a_write_from_another_device_during_an_update_is_merged(
    login: Callable[..., dict[str, str]], cogsync_controls: Any, cogsync_pool: str
) -> None:
    app = SettingsSync(login())
    app.set("theme", "dark")
    app.synchronize()
    app.set("theme", "light")
    rounds = app.rounds
    # The server holds the app's next UpdateRecords for two seconds; meanwhile a tablet
    # writes, so the update arrives with a sync count that is no longer current.
    cogsync_controls.delay("UpdateRecords", 2.0, identity_id=app.identity_id)
    worker, outcome = _in_background(app.synchronize)
    deadline = time.monotonic() + 10
    while cogsync_controls.faults()[0]["Hits"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    cogsync_controls.write_records(cogsync_pool, app.identity_id, "settings",
                                   {"theme": "blue", "lang": "fr"}, device_id="tablet")
    worker.join(30)
    assert not isinstance(outcome[0], Exception), outcome
    assert (app.conflicts, app.rounds - rounds) == (1, 2)  # one 409, then merged: no loop
    assert app.values() == {"theme": "light", "lang": "fr"}
    tablet = SettingsSync(login(), device_id="tablet")
    tablet.synchronize()
    assert tablet.values() == {"theme": "light", "lang": "fr"}


def test_a_conflict_that_never_ends_gives_up_and_keeps_the_change(
    login: Callable[..., dict[str, str]], cogsync_controls: Any
) -> None:
    app = SettingsSync(login(), max_attempts=4)
    app.set("theme", "dark")
    cogsync_controls.fail("UpdateRecords", "ResourceConflictException", count=100,
                          identity_id=app.identity_id)
    with pytest.raises(SyncGaveUp):
        app.synchronize()
    assert app.conflicts == 4
    assert app.pending() == ["theme"]  # not lost
    assert cogsync_controls.faults()[0]["Hits"] == 4
    cogsync_controls.clear()
    app.synchronize()
    assert app.pending() == []


def test_a_throttled_sync_waits_and_gets_through(
    login: Callable[..., dict[str, str]], cogsync_controls: Any, cogsync_sync_client: Any,
    cogsync_pool: str,
) -> None:
    app = SettingsSync(login())
    app.set("theme", "dark")
    cogsync_controls.fail("UpdateRecords", "TooManyRequestsException", count=2,
                          identity_id=app.identity_id)
    app.synchronize()
    assert (app.throttled, app.rounds) == (2, 3)
    stored = cogsync_sync_client.list_records(IdentityPoolId=cogsync_pool,
                                              IdentityId=app.identity_id,
                                              DatasetName="settings")["Records"]
    assert {r["Key"]: r["Value"] for r in stored} == {"theme": "dark"}


def test_a_dataset_deleted_elsewhere_is_started_again(
    login: Callable[..., dict[str, str]], cogsync_controls: Any, cogsync_pool: str
) -> None:
    app = SettingsSync(login())
    app.set("theme", "dark")
    app.set("font", "serif")
    app.synchronize()
    cogsync_controls.delete_dataset(cogsync_pool, app.identity_id, "settings")
    cogsync_controls.write_records(cogsync_pool, app.identity_id, "settings", {"lang": "fr"})
    app.set("font", "mono")
    app.synchronize()
    assert app.values() == {"lang": "fr", "font": "mono"}  # theme went with the dataset


def test_expired_credentials_are_renewed(
    login: Callable[..., dict[str, str]], cogsync_controls: Any
) -> None:
    app = SettingsSync(login())
    app.synchronize()
    cogsync_controls.expire_sessions(app.identity_id)
    app.set("theme", "dark")
    app.synchronize()
    assert app.refreshes == 1
    assert app.pending() == []
