"""The one error the transfer commands show: a sentence for the operator, exit status 2."""

from __future__ import annotations


class TransferError(Exception):
    """Stops a transfer command with a one-line message (no traceback)."""
