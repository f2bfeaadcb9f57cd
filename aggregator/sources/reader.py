"""A YAML 1.2 reader for sources.yaml: plain data with the line and column of every node.

libyaml's event parser (fast) read under the YAML 1.2 core schema, where ``no``, ``off`` and ``y``
are words, not booleans. Safe by construction: only the core tags are accepted, never an alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from aggregator.errors import ConfigError

# libyaml's parser when PyYAML has it (fast: 10,000 sources in well under a second), else Python's
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# YAML 1.2 core schema for plain scalars (what ruamel reads): `no`, `off`, `y` stay strings.
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE = re.compile(r"^(?:true|True|TRUE)$")
_FALSE = re.compile(r"^(?:false|False|FALSE)$")
_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
_SPECIAL_START = frozenset("~nNtTfF0123456789+-.")  # how a non-string plain scalar can start
_CORE = "tag:yaml.org,2002:"
_STR_TAG = f"{_CORE}str"
_SAFE_TAGS = {f"{_CORE}{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")}

Loc = tuple[int | str, ...]


def _scalar(value: str) -> Any:
    """A plain (unquoted) scalar under the YAML 1.2 core schema."""
    if value and value[0] not in _SPECIAL_START:  # most values: text, quickly
        return value
    if _NULL.match(value):
        return None
    if _TRUE.match(value):
        return True
    if _FALSE.match(value):
        return False
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _INT_OCT.match(value):
        return int(value[2:], 8)
    if _INT_HEX.match(value):
        return int(value[2:], 16)
    if _FLOAT.match(value):
        return float(value.replace("_", ""))
    if _INF.match(value):
        return float("-inf") if value.startswith("-") else float("inf")
    if _NAN.match(value):
        return float("nan")
    return value


@dataclass
class YamlTree:
    """A parsed document as plain dicts/lists, with the 1-based (line, column) of every node."""

    root: Any
    positions: dict[Loc, tuple[int, int]]  # a mapping entry: its key; a list item: the item


class _Frame:
    """An open mapping or list while the document is read."""

    __slots__ = ("container", "is_map", "key", "loc", "seen")

    def __init__(self, container: Any, loc: Loc):
        self.container = container
        self.is_map = isinstance(container, dict)
        self.loc = loc
        self.key: Any = _NO_KEY  # a mapping's key waiting for its value
        self.seen: dict[str, int] = {}  # a mapping's keys -> the line each was given on


def read_yaml(text: str, filename: str = "sources.yaml") -> YamlTree:
    """Parse YAML text with libyaml's event parser (fast), building plain data and positions.

    Safe by construction: only the core tags (``!!str``, ``!!int``...) are accepted; any other
    tag (``!!python/object``, ``!custom``) and any alias is an error naming its line and column.
    """
    problems: list[str] = []
    positions: dict[Loc, tuple[int, int]] = {}
    stack: list[_Frame] = []
    root: Any = None
    documents = 0

    def where(mark: Any) -> str:
        return f"{filename}:{mark.line + 1}:{mark.column + 1}"

    def attach(value: Any, mark: Any) -> Loc | None:
        """Put ``value`` into the innermost container; return its loc (None for a key)."""
        nonlocal root
        if not stack:
            root = value
            return ()
        frame = stack[-1]
        if not frame.is_map:
            child = (*frame.loc, len(frame.container))
            frame.container.append(value)
            positions[child] = (mark.line + 1, mark.column + 1)
            return child
        if frame.key is _NO_KEY:
            if isinstance(value, dict | list):
                problems.append(f"{where(mark)}: a mapping key must be a plain value")
            key = value if isinstance(value, str) else str(value)
            if key in frame.seen:
                problems.append(
                    f"{where(mark)}: duplicate key {key!r}: also given on line {frame.seen[key]}"
                )
            frame.seen[key] = mark.line + 1
            frame.key = key
            positions[(*frame.loc, key)] = (mark.line + 1, mark.column + 1)
            return None
        key, frame.key = frame.key, _NO_KEY
        if key not in frame.container:  # a duplicate key keeps its first value
            frame.container[key] = value
        return (*frame.loc, key)

    def check_tag(event: Any) -> None:
        if event.tag not in _SAFE_TAGS and event.tag != "!":
            problems.append(
                f"{where(event.start_mark)}: the YAML tag {event.tag!r} is not allowed "
                "(sources.yaml holds plain values, lists and mappings only)"
            )

    scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end, seq_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            kind = type(event)
            if kind is scalar_event:
                value: Any = event.value
                tag = event.tag
                if tag is None:
                    if (
                        event.implicit[0]
                        and not event.style
                        and value
                        and (value[0] in _SPECIAL_START)
                    ):
                        value = _scalar(value)
                    elif event.implicit[0] and not event.style and not value:
                        value = None
                else:
                    check_tag(event)
                    if tag != _STR_TAG:
                        value = _scalar(value)
                # inline the common case of attach(): a value for a waiting mapping key
                frame = stack[-1] if stack else None
                if frame is not None and frame.is_map and frame.key is not _NO_KEY:
                    key, frame.key = frame.key, _NO_KEY
                    if key not in frame.container:
                        frame.container[key] = value
                else:
                    attach(value, event.start_mark)
            elif kind is map_start or kind is seq_start:
                if event.tag is not None:
                    check_tag(event)
                container: Any = {} if kind is map_start else []
                loc = attach(container, event.start_mark)
                stack.append(_Frame(container, ("?",) if loc is None else loc))
            elif kind is map_end or kind is seq_end:
                stack.pop()
            elif kind is alias_event:
                problems.append(
                    f"{where(event.start_mark)}: aliases (*name) are not supported in "
                    "sources.yaml; write the value out"
                )
                attach(None, event.start_mark)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    line = _marker_line(text, event.start_mark.line)
                    problems.append(
                        f"{filename}:{line}:1: a second YAML document ('---'); "
                        "sources.yaml holds one"
                    )
                    break
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([marked_error(filename, exc, "YAML syntax error")]) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML refuses: say where it is
        in_bytes = _Loader is not yaml.SafeLoader  # libyaml counts UTF-8 bytes
        line, column = _line_and_column(text, exc.position, byte_offsets=in_bytes)
        problem = f"character U+{exc.character:04X} is not allowed ({exc.reason})"
        raise ConfigError([f"{filename}:{line}:{column}: {problem}; remove it"]) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - libyaml raises marked errors in practice
        raise ConfigError([f"{filename}: YAML error: {exc}"]) from exc
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return YamlTree(root, positions)


class _NoKey:
    """Marks a mapping that waits for its next key."""


_NO_KEY = _NoKey()


def _marker_line(text: str, from_line: int) -> int:
    """1-based line of the first '---' at or after ``from_line`` (0-based)."""
    for number, line in enumerate(text.splitlines()[from_line:], start=from_line + 1):
        if line.startswith("---"):
            return number
    return from_line + 1


def _line_and_column(text: str, position: int, *, byte_offsets: bool) -> tuple[int, int]:
    """1-based line and column of a reader error's position (libyaml counts UTF-8 bytes)."""
    if byte_offsets:
        before = text.encode("utf-8")[:position].decode("utf-8", "ignore")
    else:
        before = text[:position]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def marked_error(filename: str, exc: Any, what: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return f"{where}: {what}: {detail}".rstrip(": ")
