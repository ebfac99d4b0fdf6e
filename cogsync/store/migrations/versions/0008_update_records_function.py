"""PostgreSQL: UpdateRecords as one server-side function (see store/pg_functions.py);
the live channel's listeners, so that a change is announced only where someone listens.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from cogsync.store import pg_functions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_listeners",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("backend_pid", sa.Integer, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("channel", "backend_pid", name="pk_live_listeners"),
    )
    if op.get_bind().dialect.name == "postgresql":
        pg_functions.install(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_functions.DROP)
    op.drop_table("live_listeners")
