"""A pool of many identities written as a pool export (the format of docs/migration.md,
written here by hand), for ``cogsync restore`` to load fast: the tests and the transfer
benchmark start from it."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "us-east-1"
DEVELOPER = "login.example.app"
BASE_TIME = 1_700_000_000.0


@dataclass(frozen=True)
class Generated:
    pool_id: str
    identities: list[str]
    records: int


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _record(key: str, value: str | None, count: int, when: float, by: str) -> dict[str, Any]:
    return {"type": "record", "key": key, "value": value, "sync_count": count,
            "last_modified_date": when, "last_modified_by": by,
            "device_last_modified_date": when - 0.25 if value is not None else None}


def write_generated_pool(path: Path, account_id: str, identities: int,
                         seed: int = 17) -> Generated:
    """A pool of ``identities`` identities as a pool export: every identity has a dataset
    'profile' (every fifth with a tombstone), every seventh also 'inventory' of ten
    records, every third a developer login."""
    rng = random.Random(seed)
    pool_id = f"{REGION}:{_uuid(rng)}"
    lines: list[dict[str, Any]] = [
        {"format": "cogsync-export", "version": 1, "scope": "pool", "pool": pool_id,
         "master_key_id": ""},
        {"type": "account", "account_id": account_id, "created_at": BASE_TIME},
        {"type": "pool", "identity_pool_id": pool_id, "account_id": account_id,
         "name": "generated", "created_at": BASE_TIME, "events": {}, "push_sync": None,
         "cognito_streams": None, "sync_sessions_count": 0, "allow_unauthenticated": True,
         "allow_classic_flow": False, "developer_provider_name": DEVELOPER,
         "identity_attributes": {}},
    ]
    ids = sorted(f"{REGION}:{_uuid(rng)}" for _ in range(identities))
    logins, datasets = [], []
    total_records = 0
    for i, identity_id in enumerate(ids):
        when = BASE_TIME + i + rng.random()
        lines.append({"type": "identity", "identity_pool_id": pool_id,
                      "identity_id": identity_id, "created_at": when,
                      "last_modified_at": when + 0.5})
        if i % 3 == 0:
            logins.append({"type": "login", "identity_pool_id": pool_id, "provider": DEVELOPER,
                           "subject": f"gen-user-{i:05d}", "identity_id": identity_id,
                           "created_at": when})
        by = f"device-{i % 11}"
        profile = [_record("level", str(rng.randint(1, 99)), 1, when + 1, by),
                   _record("name", f"player {i} ✓", 1, when + 1, by)]
        if i % 5 == 0:
            profile.append(_record("old", None, 2, when + 2, by))
        sets = [("profile", profile)]
        if i % 7 == 0:
            sets.append(("inventory", [_record(f"item{j:02d}", "x" * rng.randint(1, 40), 1,
                                               when + 3, by) for j in range(10)]))
        for name, records in sets:
            live = [r for r in records if r["value"] is not None]
            datasets.append(
                [{"type": "dataset", "identity_pool_id": pool_id, "identity_id": identity_id,
                  "name": name, "sync_count": max(r["sync_count"] for r in records),
                  "creation_date": when + 1,
                  "last_modified_date": max(r["last_modified_date"] for r in records),
                  "last_modified_by": by,
                  "data_storage": sum(len(r["key"].encode()) + len(r["value"].encode())
                                      for r in live),
                  "num_records": len(live), "merged_into": None}, *records])
            total_records += len(records)
    lines += sorted(logins, key=lambda x: x["subject"])
    for group in sorted(datasets, key=lambda g: (g[0]["identity_id"], g[0]["name"])):
        lines += group
    counts: dict[str, int] = {}
    for line in lines[1:]:
        counts[line["type"]] = counts.get(line["type"], 0) + 1
    lines.append({"type": "end", "counts": counts})
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return Generated(pool_id, ids, total_records)
