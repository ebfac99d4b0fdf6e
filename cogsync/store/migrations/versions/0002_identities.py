"""Cognito Identity: pool attributes, identities, logins, devices, subscriptions, merges.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_pools") as batch:
        batch.add_column(
            sa.Column(
                "allow_unauthenticated", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(
            sa.Column("allow_classic_flow", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("developer_provider_name", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("identity_attributes", sa.Text, nullable=False, server_default="{}")
        )
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(128), nullable=True))
    op.create_table(
        "identities",
        sa.Column("identity_id", sa.String(55), primary_key=True),
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_modified_at", sa.Float, nullable=False),
    )
    op.create_index("ix_identities_pool", "identities", ["identity_pool_id", "identity_id"])
    op.create_table(
        "identity_logins",
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("identity_id", sa.String(55), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "identity_pool_id", "provider", "subject", name="pk_identity_logins"
        ),
    )
    op.create_index("ix_identity_logins_identity", "identity_logins", ["identity_id"])
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("identity_id", sa.String(55), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_devices_identity", "devices", ["identity_pool_id", "identity_id"])
    op.create_table(
        "subscriptions",
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("identity_id", sa.String(55), nullable=False),
        sa.Column("dataset_name", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "identity_pool_id", "identity_id", "dataset_name", "device_id", name="pk_subscriptions"
        ),
    )
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("server_keys", "subscriptions", "devices", "identity_logins", "identities"):
        op.drop_table(table)
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("merged_into")
    with op.batch_alter_table("identity_pools") as batch:
        for column in (
            "identity_attributes",
            "developer_provider_name",
            "allow_classic_flow",
            "allow_unauthenticated",
        ):
            batch.drop_column(column)
