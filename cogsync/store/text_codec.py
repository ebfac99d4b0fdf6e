"""Text on PostgreSQL: every string round-trips, U+0000 included.

PostgreSQL's text cannot hold U+0000, which AWS accepts in record keys and values, device
tokens, developer user identifiers, logins and more. So on PostgreSQL every string goes
to the database encoded and comes back decoded:

    U+0000 -> U+0001 U+0001
    U+0001 -> U+0001 U+0002

and every other character stays as it is. The code is reversible, changes no string
without U+0000 or U+0001, and keeps order and prefixes: comparing two encoded strings
byte by byte (COLLATE "C", and UTF-8's byte order is code point order) agrees with
comparing the strings, and ``encode(a + b) == encode(a) + encode(b)``, so ``>``-paging,
``ORDER BY``, equality and ``LIKE 'prefix%'`` work on the encoded text unchanged.

It is applied in one place, the psycopg connection's adapters (:func:`install`): every
``str`` bound as a parameter (in any statement, raw SQL too, and the elements of arrays)
is encoded, and every ``text`` or ``varchar`` value read is decoded. What SQL does with
stored text by itself sees the stored form: a statement that puts U+0001 in text by
itself (``chr(1)``) must encode it the same way; one that sizes stored text uses
:func:`octet_length_sql`; text that leaves the database other than as a result column
(a NOTIFY payload built in SQL, an error message quoting a value) is in the stored form,
and :func:`decode` gives it back. JSON the store keeps as text (``orjson``) escapes every
control character, so it never carries either character raw. An encoded string can be
twice as long: columns whose model bound could be exceeded are twice as wide on
PostgreSQL (migration 0007). SQLite stores U+0000 as it is; nothing is installed there.
"""

from __future__ import annotations

from functools import cache
from typing import Any

NUL = "\x00"
ESCAPE = "\x01"


def encode(text: str) -> str:
    """The form PostgreSQL stores."""
    if NUL not in text and ESCAPE not in text:
        return text
    return text.replace(ESCAPE, "\x01\x02").replace(NUL, "\x01\x01")


def decode(stored: str) -> str:
    """The string :func:`encode` was given (leftmost matches are always whole codes)."""
    if ESCAPE not in stored:
        return stored
    return stored.replace("\x01\x01", NUL).replace("\x01\x02", ESCAPE)


def octet_length_sql(expression: str) -> str:
    """PostgreSQL SQL for the UTF-8 byte length of the text ``expression`` stands for, as
    the client wrote it (``octet_length`` of the stored form counts each escape pair as
    two bytes; each stands for one). For SQL that sizes stored text itself."""
    return (
        f"CASE WHEN strpos({expression}, chr(1)) = 0 THEN octet_length({expression}) "
        f"ELSE octet_length(replace(replace({expression}, chr(1) || chr(1), '.'), "
        f"chr(1) || chr(2), '.')) END"
    )


@cache
def _adapters() -> tuple[type, type, type, type]:
    """The codec's psycopg dumpers and loaders (psycopg is imported on PostgreSQL only)."""
    from psycopg.types.string import (
        StrBinaryDumper,
        StrDumperUnknown,
        TextBinaryLoader,
        TextLoader,
    )

    class Dumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(encode(obj))

    class BinaryDumper(StrBinaryDumper):
        def dump(self, obj: str) -> Any:
            return super().dump(encode(obj))

    class Loader(TextLoader):
        def load(self, data: Any) -> Any:
            return decode(super().load(data))

    class BinaryLoader(TextBinaryLoader):
        def load(self, data: Any) -> Any:
            return decode(super().load(data))

    return Dumper, BinaryDumper, Loader, BinaryLoader


def install(connection: Any) -> None:
    """Makes a psycopg connection encode every ``str`` parameter and decode every
    ``text`` and ``varchar`` result (text and binary formats)."""
    dumper, binary_dumper, loader, binary_loader = _adapters()
    adapters = connection.adapters
    adapters.register_dumper(str, binary_dumper)
    adapters.register_dumper(str, dumper)  # the last registered is the default
    for name in ("text", "varchar"):
        adapters.register_loader(name, loader)
        adapters.register_loader(name, binary_loader)
