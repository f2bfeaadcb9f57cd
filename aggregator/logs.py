"""Log output: a readable line by default, one JSON object per line with ``--log-format json``.

Log calls name what they concern with ``extra=``: ``source_id`` (and the feed's ``url``) in the
crawl, ``story_id`` in summaries, ``url`` for a page. The text format already says so in the
message; the JSON format adds every such field to the object, so a monitor can select a
source's lines without parsing messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"

# What every LogRecord carries; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the ``extra=`` fields,
    and the traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: LogFormat = "text", verbose: int = 0) -> None:
    """Root logging on stderr: warnings by default, -v info, -vv debug.

    Like logging.basicConfig, it leaves alone a root logger someone else set up (an application
    embedding the package, pytest); a second call replaces only what the first installed.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "aggregator", False)]
    if root.handlers and not ours:
        return
    for handler in ours:
        root.removeHandler(handler)
    new = logging.StreamHandler()
    new.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    new.aggregator = True  # type: ignore[attr-defined]
    root.addHandler(new)
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
