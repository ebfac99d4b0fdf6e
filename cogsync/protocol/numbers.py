"""Numbers on the wire: ASCII digits only.

``str.isdigit()`` and ``int()`` accept far more than HTTP and AWS mean by a number:
superscripts (``"²".isdigit()`` is true, then ``int("²")`` raises), Arabic-Indic and other
Unicode digits (``int("١٢٠") == 120``), underscores and surrounding spaces. Every number
read from a request goes through this grammar instead.
"""

from __future__ import annotations

import re

_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")


def unsigned(text: str, max_digits: int = 19) -> int | None:
    """``text`` as a non-negative integer of ASCII digits (at most ``max_digits``), or None."""
    if len(text) <= max_digits and _UNSIGNED.fullmatch(text):
        return int(text)
    return None


def signed(text: str) -> int | None:
    """``text`` as an integer: an optional ASCII sign, then ASCII digits; or None."""
    return int(text) if _SIGNED.fullmatch(text) else None
