"""The first schema: accounts, keys, pools, datasets, records, deletions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "identity_pools",
        sa.Column("identity_pool_id", sa.String(55), primary_key=True),
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("push_sync", sa.Text, nullable=True),
        sa.Column("cognito_streams", sa.Text, nullable=True),
        sa.Column("sync_sessions_count", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_identity_pools_account", "identity_pools", ["account_id", "identity_pool_id"]
    )
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("identity_id", sa.String(55), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("sync_count", sa.BigInteger, nullable=False),
        sa.Column("creation_date", sa.Float, nullable=False),
        sa.Column("last_modified_date", sa.Float, nullable=False),
        sa.Column("last_modified_by", sa.String(256), nullable=True),
        sa.Column("data_storage", sa.BigInteger, nullable=False),
        sa.Column("num_records", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("identity_pool_id", "identity_id", "name", name="uq_datasets_name"),
    )
    op.create_table(
        "records",
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("sync_count", sa.BigInteger, nullable=False),
        sa.Column("last_modified_date", sa.Float, nullable=False),
        sa.Column("last_modified_by", sa.String(256), nullable=True),
        sa.Column("device_last_modified_date", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("dataset_id", "key", name="pk_records"),
    )
    op.create_index("ix_records_delta", "records", ["dataset_id", "sync_count", "key"])
    op.create_table(
        "dataset_deletions",
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("identity_id", sa.String(55), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("deleted_sync_count", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "identity_pool_id", "identity_id", "name", name="pk_dataset_deletions"
        ),
    )


def downgrade() -> None:
    for table in (
        "dataset_deletions",
        "records",
        "datasets",
        "identity_pools",
        "access_keys",
        "accounts",
    ):
        op.drop_table(table)
