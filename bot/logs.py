"""Structured JSON logs with request/session/job ids. Secret-looking values are redacted."""
from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timezone

_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_SECRET_KEYS = re.compile(r"(token|secret|password|authorization|api_key|private_key|credential)", re.I)
_SECRET_VALUES = re.compile(
    r"(xox[abeposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-ant-[A-Za-z0-9_-]+|Bearer\s+[A-Za-z0-9._~+/=-]+"
    r"|Basic\s+[A-Za-z0-9+/=]+"
    r"|eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"  # a bare JWT (Teams / Bot Framework tokens)
)
# The password in a URL such as postgresql://user:password@host/db (driver errors quote connection URLs).
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):[^@/\s]+@")
# Fields bound to every record logged inside a `context(...)` block (a job's id, its session).
_context: ContextVar[dict[str, object]] = ContextVar("log_context", default={})


@contextlib.contextmanager
def context(**fields: object) -> Iterator[None]:
    """Adds `fields` to every log record emitted inside the block (in this task), unless the record
    sets them itself; None values are left out."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    extras = {k: v for k, v in vars(record).items() if k not in _STD and not k.startswith("_")}
    return {**{k: v for k, v in _context.get().items() if k not in extras}, **extras}


def _redact_field(key: str, value: object) -> object:
    return "[REDACTED]" if _SECRET_KEYS.search(key) else redact(value)


def redact(value: object) -> object:
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1:[REDACTED]@", _SECRET_VALUES.sub("[REDACTED]", value))
    if isinstance(value, dict):
        return {k: ("[REDACTED]" if _SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in _extras(record).items():
            out[key] = _redact_field(key, value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        base = f"{record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if extras:
            base += " " + " ".join(f"{k}={_redact_field(k, v)}" for k, v in extras.items())
        if record.exc_info:
            base += "\n" + str(redact(self.formatException(record.exc_info)))
        return base


def configure(level: str = "INFO", fmt: str = "json", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "apscheduler", "httpx2", "msrest", "msal", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
