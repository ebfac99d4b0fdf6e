"""Developer keys remember when they were first used.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))
    # Keys made before this revision may well have been used: count them as used, so
    # that no start prints an old secret again.
    op.execute("UPDATE access_keys SET last_used_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_column("last_used_at")
