"""Structured (JSON) logs, one object per line.

What never goes into a log: tokens (of any kind), query strings, raw request
paths (a device token is a path segment), full phone numbers. The access log
names the route template, not the path.

Two guards hold for every logger that writes through `JsonFormatter`
(uvicorn's included, which print raw paths of WebSocket handshakes): the
query string of any path in a message is cut out, and an exception is
written as its classes and frames without its message, because messages
carry values (a database error's parameters and its DETAIL line with the
failing row: phones, positions, notes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

# Attributes every LogRecord has; anything else passed in `extra` is a field.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# A path's query: from `?` up to the next blank (a closing quote is kept).
_QUERY = re.compile(r"""(/[^\s"'?]*)\?(?=\S)\S*?(?=["']?(?:\s|$))""")
REDACTED_QUERY = "?[redacted]"

# Exceptions whose messages Python writes from names and the OS, never from
# request data: they keep their message. Every other message is left out.
_MESSAGE_KEPT = (AttributeError, NameError, ImportError, OSError)
# Names, never values, that database errors carry (asyncpg's and SQLAlchemy's).
_DB_NAMES = ("sqlstate", "constraint_name", "table_name", "column_name")
_STATEMENT = re.compile(
    r"^\s*(INSERT\s+INTO\s+\S+|UPDATE\s+\S+|DELETE\s+FROM\s+\S+|WITH\s+\S+"
    r"|SELECT\b.*?\bFROM\s+[\w.\"]+|\w+)",
    re.IGNORECASE | re.DOTALL,
)
_LOGGED = "_hulian_logged"
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def redact_queries(text: str) -> str:
    return _QUERY.sub(lambda m: m.group(1) + REDACTED_QUERY, text)


def statement_name(sql: str) -> str:
    """`INSERT INTO otp_code`, `SELECT … FROM person`: which statement, not
    what it was given."""
    match = _STATEMENT.match(sql)
    if not match:
        return "?"
    words = " ".join(match.group(1).split())
    if words.upper().startswith("SELECT ") and " FROM " in words.upper():
        return "SELECT … FROM " + words.rsplit(" ", 1)[1]  # noqa: S608 - a log label, never run
    return words


def describe_exception(exc: BaseException) -> str:
    """The class, and what may be said of it without its values."""
    kind = type(exc)
    text = f"{kind.__module__}.{kind.__qualname__}"
    notes = []
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        notes.append(f"statement: {statement_name(statement)}")
    for name in _DB_NAMES:
        value = getattr(exc, name, None)
        if isinstance(value, str) and value:
            notes.append(f"{name}: {value}")
    if isinstance(exc, _MESSAGE_KEPT):
        notes.append(f"message: {exc}")
    return f"{text} ({'; '.join(notes)})" if notes else text


def format_exception_safely(exc: BaseException) -> str:
    """A traceback of frames (file, line, function) and classes, causes
    included, without the exception messages or source lines."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for position, (item, _) in enumerate(reversed(chain)):
        if position:
            # The link that led from the later exception to this earlier one.
            parts.append(f"\n\n{chain[len(chain) - position][1]}\n\n")
        parts.append("Traceback (most recent call last):\n")
        for frame in traceback.extract_tb(item.__traceback__):
            parts.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n')
        parts.append(describe_exception(item))
    return "".join(parts)


def mark_logged(exc: BaseException) -> None:
    """Say that `exc` is in the log already (with its request id): the
    framework re-raises what our handler answered, and the server would log
    it a second time."""
    with contextlib.suppress(AttributeError):
        setattr(exc, _LOGGED, True)


class OncePerException(logging.Filter):
    """Drops a record of an exception that `mark_logged` says is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, _LOGGED, False))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_queries(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = redact_queries(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def formatException(  # noqa: N802 - logging.Formatter's name
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        exc = ei[1]
        return redact_queries(format_exception_safely(exc)) if exc is not None else ""


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """dictConfig for uvicorn and the app: JSON to stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.core.logging.JsonFormatter"}},
        "filters": {"once": {"()": "app.core.logging.OncePerException"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["once"],
                "stream": "ext://sys.stderr",
            }
        },
        # Libraries' own loggers (SQLAlchemy's pool, asyncpg) through the same
        # guards, rather than Python's last-resort handler, which has none.
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            # Off: it prints raw paths and query strings (`?token=`).
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "hulian": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
