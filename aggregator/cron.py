"""Cron expressions as crontab(5) reads them: "minute hour day month weekday".

Checked when sources.yaml is read (settings.digest_cron), so a typo is a file:line error rather
than a daemon that never digests. ``Cron.trigger_fields`` hands the expanded values to
apscheduler, whose own crontab reader counts weekdays from Monday (0) where cron counts them
from Sunday (0 and 7); with the values spelt out, "0 6 * * 1-5" means weekdays either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names for the values from lowest on)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),  # 0 and 7 are Sunday
)
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the values each field allows."""

    expression: str  # as written
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]  # days of the month, 1-31
    months: tuple[int, ...]  # 1-12
    weekdays: tuple[int, ...]  # 0 (Sunday) to 6 (Saturday)

    def trigger_fields(self) -> dict[str, str]:
        """apscheduler CronTrigger keyword arguments, every field spelt out."""

        def values(field: tuple[int, ...], full: range) -> str:
            return "*" if set(field) == set(full) else ",".join(str(v) for v in field)

        weekdays = (
            "*"
            if set(self.weekdays) == set(range(7))
            else ",".join(_WEEKDAYS[d] for d in self.weekdays)
        )
        return {
            "minute": values(self.minutes, range(60)),
            "hour": values(self.hours, range(24)),
            "day": values(self.days, range(1, 32)),
            "month": values(self.months, range(1, 13)),
            "day_of_week": weekdays,
        }


def parse_cron(expression: str) -> Cron:
    """A crontab expression (five fields, or a macro such as @hourly); ValueError says what is
    wrong. Restricting both the day of the month and the day of the week is refused: crontab
    runs when either matches, apscheduler only when both do."""
    text = MACROS.get(expression.strip().lower(), expression.strip().lower())
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; a cron expression has five: "
            "minute hour day-of-month month day-of-week (e.g. '0 * * * *' for every hour)"
        )
    fields = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = sorted({d % 7 for d in fields[4]})
    if parts[2] != "*" and parts[4] != "*":
        raise ValueError(
            f"{expression!r} restricts both the day of the month and the day of the week; "
            "restrict one of them and leave the other '*'"
        )
    return Cron(
        expression=expression,
        minutes=tuple(fields[0]),
        hours=tuple(fields[1]),
        days=tuple(fields[2]),
        months=tuple(fields[3]),
        weekdays=tuple(weekdays),
    )


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> list[int]:
    found: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{name} field {text!r}: cannot read {item!r}")
        star, first, last, step = match.groups()
        if star:
            start, end = low, high if name != "day of week" else 6
        else:
            start = _value(first, name, low, high, names)
            # "5/15" runs from 5 to the field's end; a bare value is just itself
            end = _value(last, name, low, high, names) if last else (high if step else start)
        if start > end:
            raise ValueError(f"{name} field {text!r}: the range {item!r} runs backwards")
        stride = int(step) if step else 1
        if stride < 1:
            raise ValueError(f"{name} field {text!r}: a step must be at least 1")
        found.update(range(start, end + 1, stride))
    return sorted(found)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.isdigit():
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{name} {value} is out of range ({low}-{high})")
        return value
    if text in names:
        return low + names.index(text)
    known = f" ({', '.join(names)} or {low}-{high})" if names else f" ({low}-{high})"
    raise ValueError(f"{name} {text!r} is not a number or a name{known}")
