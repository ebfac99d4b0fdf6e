"""kill -9 trials: writers store batches of fresh keys while the server is killed at a
moment the seed draws, then started again on the same data. After each trial every
acknowledged batch must be wholly stored (0 lost) and every batch left without an answer
wholly stored or wholly absent (0 half-applied). On the test backend.

Bounded and seeded in the suite: ``COGSYNC_CRASH_TRIALS`` (default 4) and
``COGSYNC_CRASH_SEED`` (default 1) set the run, for example
``COGSYNC_CRASH_TRIALS=100 python -m pytest tests/test_crash_trials.py -s`` for a long one
(``COGSYNC_TEST_BACKEND=postgresql`` for PostgreSQL). The figures are printed.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from tests import history
from tests.server import backend, new_identity_id, wait_until

TRIALS = int(os.environ.get("COGSYNC_CRASH_TRIALS", "4"))
SEED = int(os.environ.get("COGSYNC_CRASH_SEED", "1"))


def test_kill_9_trials_lose_no_acknowledged_write_and_half_apply_none(make_server: Any) -> None:
    srv = make_server()
    rng = random.Random(SEED)
    acked = unknown = lost = half = 0
    started = time.monotonic()
    for trial in range(TRIALS):
        identity = new_identity_id()
        delay = rng.uniform(0.1, 1.2)

        def kill_once(identity: str = identity, delay: float = delay) -> None:
            # Once the writers have stored something (however loaded the machine), then
            # at the drawn moment.
            wait_until(lambda: srv.client().list_datasets(
                IdentityPoolId=srv.pool_id, IdentityId=identity)["Datasets"], timeout=60)
            time.sleep(delay)
            srv.restart()  # kill -9, then start again on the same data

        storm = history.write_storm(lambda n, i: srv.client(), srv.pool_id, identity,
                                    kill_once, seed=SEED * 10_000 + trial)
        faults = history.storm_faults(storm, srv.client(), srv.pool_id, identity)
        acked, unknown = acked + len(storm.acked), unknown + len(storm.unknown)
        lost, half = lost + faults[0], half + faults[1]
        if TRIALS > 10 and (trial + 1) % 10 == 0:  # a long run tells how far it got
            print(f"\n{trial + 1} trials: {acked} acknowledged, {lost} lost, {half} half-applied",
                  flush=True)
    print(f"\nkill -9 trials on {backend()} (seed {SEED}): {TRIALS} trials, {acked} "
          f"acknowledged batches, {unknown} unanswered, {lost} lost, {half} half-applied, "
          f"{time.monotonic() - started:.0f} s")
    assert (lost, half) == (0, 0)
    assert acked >= TRIALS  # the writers did write before the kills
