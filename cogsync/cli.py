"""The ``cogsync`` command line: the parser, and one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from cogsync import __version__
from cogsync.commands import credentials, identities, outbox, pools, serve
from cogsync.config import LOG_FORMATS, LOG_LEVELS
from cogsync.errors import StartupError
from cogsync.logs import configure_logging
from cogsync.transfer import commands as transfer

DESCRIPTION = (
    "A self-hostable, wire-compatible Amazon Cognito Sync server (with Cognito Identity). "
    "Run 'cogsync serve' to start it; every command also runs as 'python -m cogsync'."
)


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cogsync", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"cogsync {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    credentials.register(sub)
    pools.register(sub)
    identities.register(sub)
    outbox.register(sub)
    transfer.register(sub)
    return parser


def _configure_logging(level: str | None, log_format: str | None) -> None:
    """Before the settings are checked: a bad value is reported by their check."""
    level = (level or "info").lower()
    log_format = (log_format or "text").lower()
    configure_logging(level if level in LOG_LEVELS else "info",
                      log_format if log_format in LOG_FORMATS else "text")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(getattr(args, "log_level", None) or os.environ.get("COGSYNC_LOG_LEVEL"),
                       getattr(args, "log_format", None) or os.environ.get("COGSYNC_LOG_FORMAT"))
    try:
        return int(args.func(args))
    except StartupError as exc:
        print(f"cogsync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, the traceback only on request
        logging.getLogger("cogsync").debug("unexpected error", exc_info=True)
        print(
            f"cogsync: unexpected error: {type(exc).__name__}: {exc} (--log-level debug "
            "shows where; please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
