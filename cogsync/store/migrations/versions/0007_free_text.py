"""PostgreSQL: text in the form of text_codec.py (U+0001 stored as U+0001 U+0002), and
columns of free text twice as wide (U+0000 and U+0001 take two characters there).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WIDENED = {
    ("datasets", "last_modified_by"): 256,
    ("records", "key"): 1024,
    ("records", "last_modified_by"): 256,
    ("identity_logins", "provider"): 128,
    ("identity_logins", "subject"): 1024,
    ("principal_tag_maps", "provider"): 128,
}


def _text_columns(bind: sa.engine.Connection) -> list[tuple[str, str]]:
    inspector = sa.inspect(bind)
    return [
        (f'"{table}"', f'"{column["name"]}"')
        for table in inspector.get_table_names()
        if table != "alembic_version"
        for column in inspector.get_columns(table)
        if isinstance(column["type"], sa.String)
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for (table, column), length in WIDENED.items():
        op.alter_column(table, column, type_=sa.String(2 * length),
                        existing_type=sa.String(length))
    # U+0001 written before this revision was stored as it is; now it reads as an escape.
    for table, column in _text_columns(bind):
        op.execute(
            f"UPDATE {table} SET {column} = replace({column}, chr(1), chr(1) || chr(2)) "
            f"WHERE strpos({column}, chr(1)) > 0"
        )


def downgrade() -> None:
    """The widths only: text stays in the codec's form (the older code reads a U+0001 or
    U+0000 written since as two characters; it could not store U+0000 at all)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for (table, column), length in WIDENED.items():
        op.alter_column(table, column, type_=sa.String(length),
                        existing_type=sa.String(2 * length))
