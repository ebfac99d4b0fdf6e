"""A PostgreSQL schema of its own for one benchmark server, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_URL = os.environ.get("COGSYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "cogsync_bench_"


@contextmanager
def fresh_schema(base_url: str = POSTGRES_URL) -> Iterator[str]:
    """Creates a new schema and yields the database URL that puts it first on the
    search path (what ``cogsync serve --database`` takes); drops it, with everything in
    it, on the way out, also when the benchmark failed."""
    import psycopg  # only the PostgreSQL runs need it

    schema = SCHEMA_PREFIX + uuid.uuid4().hex[:16]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
