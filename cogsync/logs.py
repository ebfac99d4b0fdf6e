"""One log format for every line a cogsync process writes: ``--log-format text|json``.

Every record goes through the root logger's one handler, on standard error. A record may
carry structured fields (``extra={"fields": {...}}``, see :func:`fields`): the text format
appends them as ``key=value``, the JSON format puts them beside ``time``, ``level``,
``logger`` and ``message``. A traceback is part of its record (``traceback`` in JSON), so
that one error is one record, never several lines a collector would split.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("alembic", "botocore", "boto3", "urllib3")
_PLAIN = re.compile(r'[^\s"=\\]+\Z')  # a value written as it is in the text format


def fields(**values: Any) -> dict[str, Any]:
    """``extra`` for a log call whose record carries these fields (None values left out)."""
    return {"fields": {k: v for k, v in values.items() if v is not None}}


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if _PLAIN.match(text):
        return text
    return orjson.dumps(text).decode()  # quoted, with escapes


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        extra: dict[str, Any] | None = getattr(record, "fields", None)
        if extra:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in extra.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        document: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra: dict[str, Any] | None = getattr(record, "fields", None)
        if extra:
            document.update(extra)
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["traceback"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=str).decode()


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def level_number(name: str) -> int:
    """A logging level from a --log-level name (``trace`` is logging's DEBUG)."""
    name = name.lower()
    return logging.DEBUG if name in ("debug", "trace") else logging.getLevelName(name.upper())


def configure_logging(level: str, log_format: str) -> None:
    """The root logger: one handler on standard error, in the chosen format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    numeric = level_number(level)
    root.setLevel(numeric)
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    # Neither format shows the caller's file and line, the process or the thread: not
    # looking them up makes a record cheaper (the logging HOWTO's "Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
