"""PostgreSQL: UpdateRecords as one server-side function (see store/pg_functions.py).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from cogsync.store import pg_functions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        pg_functions.install(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_functions.DROP)
