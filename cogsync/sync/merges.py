"""What happens to sync data when one identity is merged into another.

Datasets of the source identity move to the target. Where the target already has a
dataset of that name, the source's copy keeps its records under the name
``<name>.<source identity id>`` (the name cut short to fit 128 characters) and is
listed in the ``MergedDatasetNames`` of the target's dataset, so that the Cognito Sync
clients can merge its records and then delete it, as they do with AWS.
"""

from __future__ import annotations

from cogsync.store.database import Tx

MAX_NAME = 128
_ALL = 1_000_000


def merged_name(name: str, source_identity: str, attempt: int = 0) -> str:
    suffix = f".{source_identity}" + (f".{attempt}" if attempt else "")
    return name[: MAX_NAME - len(suffix)] + suffix


def merge_sync_data(tx: Tx, pool_id: str, source: str, target: str) -> None:
    for dataset in tx.list_datasets(pool_id, source, None, _ALL):
        if tx.get_dataset(pool_id, target, dataset.name) is None:
            tx.move_dataset(dataset, target, dataset.name, merged_into=None)
            continue
        attempt = 0
        name = merged_name(dataset.name, source)
        while tx.get_dataset(pool_id, target, name) is not None:
            attempt += 1
            name = merged_name(dataset.name, source, attempt)
        tx.move_dataset(dataset, target, name, merged_into=dataset.name)
