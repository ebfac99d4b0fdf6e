"""Property-based: random patch batches against UpdateRecords keep the sync-count rules.

Hypothesis draws sequences of calls (replace/remove on a small key alphabet so keys
collide; SyncCounts that are right, stale or ahead; duplicate keys; empty batches). A
reference model in the test says what each call must do; after every call the server's
state, read back through the API, must equal the model.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server import ServerProcess, new_identity_id

KEYS = ["a", "b", "c", "é", "key-with-a-longer-name"]

patch = st.fixed_dictionaries({
    "key": st.sampled_from(KEYS),
    "op": st.sampled_from(["replace", "replace", "remove"]),
    "value": st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    "count": st.sampled_from(["right", "right", "right", "stale", "ahead", "zero"]),
})
batches = st.lists(st.lists(patch, max_size=4), min_size=1, max_size=7)


class Model:
    def __init__(self) -> None:
        self.count = 0
        self.records: dict[str, tuple[str | None, int]] = {}  # key -> (value, sync count)

    def stored_count(self, key: str) -> int:
        return self.records.get(key, (None, 0))[1]

    def sync_count_for(self, key: str, how: str) -> int:
        current = self.stored_count(key)
        return {"right": current, "stale": current - 1, "ahead": current + 1,
                "zero": 0}[how]

    def expect(self, patches: list[dict[str, Any]]) -> str:
        keys = [p["Key"] for p in patches]
        if len(keys) != len(set(keys)):
            return "InvalidParameterException"
        if any(p["SyncCount"] < 0 for p in patches):
            return "InvalidParameterException"
        if any(p["SyncCount"] != self.stored_count(p["Key"]) for p in patches):
            return "ResourceConflictException"
        return "ok"

    def apply(self, patches: list[dict[str, Any]]) -> None:
        if not patches:
            return
        self.count += 1
        for p in patches:
            value = p.get("Value") if p["Op"] == "replace" else None
            self.records[p["Key"]] = (value, self.count)

    def storage(self) -> int:
        return sum(len(k.encode()) + len(v.encode())
                   for k, (v, _) in self.records.items() if v is not None)


def _to_patches(model: Model, drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    patches = []
    for d in drawn:
        p: dict[str, Any] = {"Op": d["op"], "Key": d["key"],
                             "SyncCount": model.sync_count_for(d["key"], d["count"])}
        if d["op"] == "replace":
            p["Value"] = d["value"]
        patches.append(p)
    return patches


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches)
def test_update_records_keeps_the_sync_count_rules(server: ServerProcess, sync: Any,
                                                   calls: list[list[dict[str, Any]]]) -> None:
    where = dict(IdentityPoolId=server.pool_id, IdentityId=new_identity_id(),
                 DatasetName="prop")
    model = Model()
    for drawn in calls:
        patches = _to_patches(model, drawn)
        expected = model.expect(patches)
        token = sync.list_records(**where)["SyncSessionToken"]
        try:
            written = sync.update_records(**where, SyncSessionToken=token,
                                          RecordPatches=patches)["Records"]
            outcome = "ok"
        except ClientError as exc:
            outcome, written = exc.response["Error"]["Code"], []
        assert outcome == expected, (patches, outcome)
        if outcome == "ok":
            model.apply(patches)
            # Every record written by the call carries the call's new dataset count.
            assert {r["SyncCount"] for r in written} <= {model.count}
            assert sorted(r["Key"] for r in written) == sorted(p["Key"] for p in patches)
        _check_state(sync, where, model)


def _check_state(sync: Any, where: dict[str, str], model: Model) -> None:
    listing = sync.list_records(**where, LastSyncCount=0)
    assert listing["DatasetSyncCount"] == model.count
    server_view = {r["Key"]: (r.get("Value"), r["SyncCount"]) for r in listing["Records"]}
    assert server_view == model.records
    # Deltas: exactly the records newer than each count.
    for n in range(model.count + 1):
        delta = sync.list_records(**where, LastSyncCount=n)["Records"]
        assert {r["Key"] for r in delta} == {k for k, (_, c) in model.records.items() if c > n}
    if listing["DatasetExists"]:
        described = sync.describe_dataset(**where)["Dataset"]
        assert described["NumRecords"] == sum(v is not None for v, _ in model.records.values())
        assert described["DataStorage"] == model.storage()
