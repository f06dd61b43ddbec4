"""Structured JSON logs with request/session/job ids. Secret-looking values are redacted."""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_SECRET_KEYS = re.compile(r"(token|secret|password|authorization|api_key|private_key|credential)", re.I)
_SECRET_VALUES = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-ant-[A-Za-z0-9_-]+|Bearer\s+[A-Za-z0-9._~+/=-]+"
    r"|Basic\s+[A-Za-z0-9+/=]+)"
)


def redact(value: object) -> object:
    if isinstance(value, str):
        return _SECRET_VALUES.sub("[REDACTED]", value)
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
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                out[key] = "[REDACTED]" if _SECRET_KEYS.search(key) else redact(value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STD and not k.startswith("_")}
        base = f"{record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if extras:
            base += " " + " ".join(f"{k}={redact(v)}" for k, v in extras.items())
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
