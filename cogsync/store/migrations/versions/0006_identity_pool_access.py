"""Cognito Identity access settings: pool roles and role mappings, principal tag maps,
and identities made inaccessible by unlinking their last login.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_pool_roles",
        sa.Column("identity_pool_id", sa.String(55), primary_key=True),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("role_mappings", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "principal_tag_maps",
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("use_defaults", sa.Boolean, nullable=False),
        sa.Column("principal_tags", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("identity_pool_id", "provider", name="pk_principal_tag_maps"),
    )
    op.create_table(
        "inaccessible_identities",
        sa.Column("identity_id", sa.String(55), primary_key=True),
        sa.Column("identity_pool_id", sa.String(55), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_inaccessible_identities_pool", "inaccessible_identities", ["identity_pool_id"]
    )


def downgrade() -> None:
    for table in ("inaccessible_identities", "principal_tag_maps", "identity_pool_roles"):
        op.drop_table(table)
