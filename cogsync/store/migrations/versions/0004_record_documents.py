"""Each record keeps the JSON document the API sends for it.

Revision ID: 0004
Revises: 0003
"""

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000


def _document(row: Any) -> bytes:
    # The rendering of cogsync.sync.documents at the time of this migration, kept here so
    # that later changes to that module do not change what this revision writes.
    members: dict[str, Any] = {
        "Key": row.key,
        "SyncCount": row.sync_count,
        "LastModifiedDate": row.last_modified_date,
    }
    if row.value is not None:
        members["Value"] = row.value
    if row.last_modified_by is not None:
        members["LastModifiedBy"] = row.last_modified_by
    if row.device_last_modified_date is not None:
        members["DeviceLastModifiedDate"] = row.device_last_modified_date
    return orjson.dumps(members)


def upgrade() -> None:
    op.add_column("records", sa.Column("document", sa.LargeBinary, nullable=True))
    records = sa.table(
        "records",
        sa.column("dataset_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("value", sa.Text),
        sa.column("sync_count", sa.BigInteger),
        sa.column("last_modified_date", sa.Float),
        sa.column("last_modified_by", sa.String),
        sa.column("device_last_modified_date", sa.Float),
        sa.column("document", sa.LargeBinary),
    )
    set_document = (
        sa.update(records)
        .where(
            records.c.dataset_id == sa.bindparam("b_dataset_id"),
            records.c.key == sa.bindparam("b_key"),
        )
        .values(document=sa.bindparam("b_document"))
    )
    bind = op.get_bind()
    after: tuple[int, str] = (-1, "")
    while True:
        rows = bind.execute(
            sa.select(records)
            .where(sa.tuple_(records.c.dataset_id, records.c.key) > sa.tuple_(*after))
            .order_by(records.c.dataset_id, records.c.key)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            set_document,
            [{"b_dataset_id": r.dataset_id, "b_key": r.key, "b_document": _document(r)}
             for r in rows],
        )
        after = (rows[-1].dataset_id, rows[-1].key)


def downgrade() -> None:
    op.drop_column("records", "document")
