"""The text codec of PostgreSQL (cogsync/store/text_codec.py): reversible, order- and
prefix-preserving, applied by the driver to every parameter and result."""

from __future__ import annotations

import os
import random

import pytest

from cogsync.store.text_codec import decode, encode, install, octet_length_sql
from tests.server import backend, independent_of_backend

ALPHABET = "\x00\x01\x02a\U0001f600"


def _strings(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6))) for _ in range(n)]


@independent_of_backend
def test_the_code_is_reversible_and_keeps_order_and_prefixes() -> None:
    rng = random.Random(4)
    for a, b in zip(_strings(rng, 20000), _strings(rng, 20000), strict=True):
        assert decode(encode(a)) == a
        assert "\x00" not in encode(a)
        assert (a < b) == (encode(a).encode() < encode(b).encode())  # COLLATE "C" order
        assert encode(a + b) == encode(a) + encode(b)  # so LIKE 'prefix%' holds
    assert encode("plain text") == "plain text"


@pytest.mark.skipif(backend() != "postgresql", reason="needs the test PostgreSQL")
def test_the_driver_encodes_every_parameter_and_decodes_every_result() -> None:
    import psycopg

    url = os.environ.get("COGSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(url, autocommit=True) as connection:
        install(connection)
        for text in _strings(random.Random(5), 300) + ["\x01\x01\x02", "\x00" * 5]:
            for binary in (False, True):
                row = connection.execute(
                    "SELECT %s::text, %s::varchar, ARRAY[%s, 'x']::text[], "
                    f"(SELECT {octet_length_sql('t')} FROM (SELECT %s::text AS t) AS s), "
                    "strpos(%s, chr(1)) > 0",
                    (text, text, text, text, text), binary=binary).fetchone()
                assert row == (text, text, [text, "x"], len(text.encode()),
                               "\x00" in text or "\x01" in text)
