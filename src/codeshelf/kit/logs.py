"""Structured logs: stdlib ``logging`` with one JSON object a line (or readable text).

An *event* is a log record with a name and fields: ``event(log, "webhook.delivery",
endpoint="whe_…", outcome="delivered")``. The JSON formatter writes its fields as keys of the
line; the text formatter as ``key=value`` after the message. The request id of the request being
served (``REQUEST_ID``) is added to every line written while it is served.

The rule for what a field may hold: public ids, counts, states, durations. Never a code, an API
key, a webhook secret, a screenshot or a receiver's answer (the test suite greps every line its
runs write for each code and key it made). Behind the rule, both formatters mask whatever is
shaped like a key, a webhook secret or a code (``redact``): an unexpected error's message, which
the log quotes, may hold one.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMATS = ("json", "text")
REQUEST_ID: ContextVar[str | None] = ContextVar("codeshelf_request_id", default=None)
_FIELDS = "codeshelf_fields"  # the attribute of a record that holds an event's fields
_EVENT = "codeshelf_event"
_REQUEST = "codeshelf_request_id"


# What is shaped like a secret is masked in every line, whatever wrote it (an unexpected error's
# message may quote one): keys (partners' and operators'), webhook secrets, PSN-shaped codes.
_SECRET_SHAPES = (
    (re.compile(r"\b(cs_(?:live|test|op)_)[A-Za-z0-9_-]{8,}"), r"\1[redacted]"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/=]{8,}"), r"\1[redacted]"),
    (
        re.compile(r"(?<![A-Za-z0-9-])[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}(?![A-Za-z0-9-])"),
        "[code redacted]",
    ),
)


def redact(text: str) -> str:
    """``text`` with whatever is shaped like a key, a webhook secret or a code masked."""
    for shape, mask in _SECRET_SHAPES:
        text = shape.sub(mask, text)
    return text


Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Call ``listener(name, fields)`` for every event from now on, whatever the log level
    (the worker's metrics count events: they never disagree with its log)."""
    if listener not in _listeners:
        _listeners.append(listener)


def event(log: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """The event ``name`` with ``fields``: told to the listeners, and logged (if ``log`` is
    enabled for ``level``). A listener that fails never fails what the event reports."""
    for listener in _listeners:
        try:
            listener(name, fields)
        except Exception:
            log.exception("a listener of %s failed", name)
    if log.isEnabledFor(level):
        extra = {_EVENT: name, _FIELDS: fields, _REQUEST: REQUEST_ID.get()}
        log.log(level, name, extra=extra)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """An event record's fields ({} for any other record)."""
    found: dict[str, Any] = getattr(record, _FIELDS, {})
    return found


def event_of(record: logging.LogRecord) -> str | None:
    name: str | None = getattr(record, _EVENT, None)
    return name


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The request id the record was made under (an event's is kept on it: it may be
    formatted elsewhere), else the one of the request being served now."""
    request_id = getattr(record, _REQUEST, None) or REQUEST_ID.get()
    return {"request_id": request_id} if request_id is not None else {}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message" | "event", …fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        name = event_of(record)
        if name is not None:
            line["event"] = name
        else:
            line["message"] = record.getMessage()
        # A field never replaces the line's own keys.
        line |= {k: v for k, v in (_context(record) | fields_of(record)).items() if k not in line}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time level logger message key=value …``: for a person at a terminal (``make run``)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = _context(record) | fields_of(record)
        if not extra:
            return redact(text)
        head, newline, tail = text.partition("\n")  # a traceback stays below the line
        pairs = " ".join(f"{key}={value}" for key, value in extra.items())
        return redact(f"{head} {pairs}{newline}{tail}")


def config(
    log_format: str, *, requests: bool = True, file: Path | None = None, level: str = "INFO"
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``log_format`` (json or text), on stderr: ours, and
    uvicorn's (uvicorn applies it in each server process). ``requests`` off: no line per
    request (``codeshelf.request``). uvicorn's own access log is left off: our request line
    says more (route template, partner, request id). ``file``: every line also appended there,
    as JSON whatever the format (reopened when logrotate moves it)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handlers: dict[str, dict[str, Any]] = {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        }
    }
    if file is not None:
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "formatter": "json",
            "filename": str(file),
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"},
            "json": {"()": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"},
        },
        "handlers": handlers,
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "codeshelf.request": {"level": level if requests else "WARNING"},
            "alembic": {"level": "WARNING"},  # readiness reads the schema's version
            # httpx logs each request's URL: a partner's webhook URL may carry its own token.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
        "root": {"handlers": list(handlers), "level": level},
    }


def configure(log_format: str, *, file: Path | None = None) -> bool:
    """Apply ``config(log_format)`` to this process (the worker; serve hands it to uvicorn),
    unless logging is configured already: a program that runs the command inside itself (the
    test suite) keeps its own. Whether it was applied."""
    if logging.getLogger().handlers:
        return False
    logging.config.dictConfig(config(log_format, file=file))
    return True
