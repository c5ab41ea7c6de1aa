"""The log's own guards, on any logger's records: query strings are cut out
of messages, and an exception is written as its classes and where it
happened, never with the values its message carries."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from collections.abc import Iterator
from io import StringIO

import pytest
from sqlalchemy.exc import IntegrityError

from app.core.logging import mark_logged, uvicorn_log_config

PHONE = "+8610090000777"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[StringIO]:
    """The service's log configuration, writing to a buffer."""
    buffer = StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    logging.config.dictConfig(uvicorn_log_config("INFO"))
    yield buffer
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "hulian"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    root.handlers[:], root.level = kept[0], kept[1]


def _lines(buffer: StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_query_strings_are_cut_from_every_logger(captured: StringIO) -> None:
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/api/v1/ws?token=eyJsecret.x.y"
    )
    logging.getLogger("hulian.test").warning("fetched http://h/p?a=1&token=abc done")
    logging.getLogger("uvicorn.error").info('"WebSocket /ws?tok"en=zz" 403')
    messages = [str(line["msg"]) for line in _lines(captured)]
    assert messages == [
        '127.0.0.1:5000 - "WebSocket /api/v1/ws?[redacted]" [accepted]',
        "fetched http://h/p?[redacted] done",
        '"WebSocket /ws?[redacted]" 403',
    ]
    # A question in prose is left alone.
    logging.getLogger("hulian.test").info("why? because")
    assert _lines(captured)[-1]["msg"] == "why? because"


def _database_error() -> IntegrityError:
    detail = Exception(
        'new row violates check constraint "c"\n'
        f"DETAIL:  Failing row contains ({PHONE}, note text)."
    )
    try:
        try:
            raise detail
        except Exception as driver:
            raise IntegrityError(
                "INSERT INTO otp_code (phone) VALUES ($1)", {"phone": PHONE}, driver
            ) from driver
    except IntegrityError as exc:
        return exc


def test_a_database_error_is_written_without_its_values(captured: StringIO) -> None:
    error = _database_error()
    logging.getLogger("hulian.errors").error("unhandled error", exc_info=error)
    text = captured.getvalue()
    assert PHONE not in text
    assert "Failing row" not in text
    assert "parameters" not in text
    [line] = _lines(captured)
    exc = str(line["exc"])
    assert "sqlalchemy.exc.IntegrityError" in exc
    assert "_database_error" in exc  # where it was raised
    assert "INSERT INTO otp_code" in exc  # the statement, by its name


def test_an_exception_already_logged_is_not_logged_again(captured: StringIO) -> None:
    error = RuntimeError("boom")
    logging.getLogger("hulian.errors").error("unhandled error", exc_info=error)
    mark_logged(error)
    # Starlette re-raises what the handler answered; uvicorn logs it again.
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=error)
    other = ValueError("another")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=other)
    lines = _lines(captured)
    assert [line["logger"] for line in lines] == ["hulian.errors", "uvicorn.error"]
