"""What the admin commands share: their options, opening the database, printing."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cogsync.config import EVERY, OPTIONS, Settings, flag_help, load_settings
from cogsync.errors import StartupError

if TYPE_CHECKING:
    from cogsync.components import Components


def add_option_flags(parser: argparse.ArgumentParser, commands: Sequence[str]) -> None:
    """The flags of the settings table that these commands take (help names the
    variable each one overrides)."""
    for option in OPTIONS:
        if option.flag is None or option.commands not in commands:
            continue
        kwargs: dict[str, Any] = {"dest": option.name, "default": None, "help": flag_help(option)}
        if option.is_switch:
            kwargs.update(action="store_const", const=True)
        elif option.repeatable:
            kwargs.update(action="append", metavar=option.metavar or "VALUE")
        else:
            kwargs.update(metavar=option.metavar or option.flag.lstrip("-").upper())
        parser.add_argument(option.flag, **kwargs)


def admin_parser(
    group: Any, name: str, help_text: str, *, json_output: bool = True
) -> argparse.ArgumentParser:
    """A subcommand that opens the server's database."""
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    add_option_flags(parser, (EVERY,))
    parser.add_argument(
        "--init",
        action="store_true",
        help="create the database if it does not exist (default: refuse, so that a "
        "command pointed at the wrong folder does not make a new, empty one)",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(vars(args))


def open_database(args: argparse.Namespace) -> Components:
    """The components over the database the flags name; an error if it does not exist
    (unless ``--init``)."""
    from cogsync.components import build_components, database_exists

    settings = settings_of(args)
    if not getattr(args, "init", False) and not database_exists(settings):
        raise StartupError(
            f"there is no cogsync database at {settings.database_label}: give the server's "
            "--data-dir or --database (its start-up lines show them), or --init to create one"
        )
    return build_components(settings)


def when(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC, to the second."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emit(args: argparse.Namespace, value: Any, rows: list[dict[str, Any]] | None = None,
         empty: str = "nothing to show") -> None:
    """``value`` as JSON with --json; else ``rows`` as an aligned table (or ``value`` as
    "Name: value" lines when it is one object)."""
    if getattr(args, "json", False):
        print(json.dumps(value))
        return
    if rows is None:
        assert isinstance(value, dict)
        for key, item in value.items():
            print(f"{key}: {'' if item is None else item}")
        return
    if not rows:
        print(empty)
        return
    columns = list(rows[0])
    cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
