"""sources.yaml -> validated settings and Source records; errors name file, line and field."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from aggregator.errors import ConfigError
from aggregator.settings import LANGUAGE_PATTERN, Settings, apply_environment
from aggregator.sources.reader import Loc, YamlTree, read_yaml
from aggregator.urls import absolute_url, canonical_url, host_and_port

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class Source(BaseModel):
    """One feed an editor listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="short stable id: lowercase, digits, - _ .")
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(description="feed URL (http or https)")
    weight: float = Field(1.0, gt=0, le=10, description="importance when ranking")
    category: str = Field("general", min_length=1, max_length=60)
    language: str = Field("", max_length=20)
    enabled: StrictBool = True
    full_text: StrictBool = Field(False, description="fetch and extract every article page")
    interval: float | None = Field(
        None, gt=0, le=10_080, description="minutes between fetches (default: crawl interval)"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = absolute_url(value)
        if not url:
            raise ValueError("must be an http:// or https:// URL with a host")
        return url

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.match(LANGUAGE_PATTERN, value):
            raise ValueError(
                "must be a language tag such as en, de or pt-BR; leave the field out when the "
                "feed says which language it is in"
            )
        return value


class SourcesFile(BaseModel):
    """The whole sources.yaml document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: Settings = Settings()
    sources: list[Source] = Field(default_factory=list)


@dataclass(frozen=True)
class Config:
    """Validated configuration: settings (environment applied) and the sources."""

    settings: Settings
    sources: tuple[Source, ...]
    path: Path | None = None  # the file it came from, None for built-in defaults

    @property
    def base_dir(self) -> Path:
        """Relative data/output paths are resolved against the config file's folder."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def enabled_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)

    def source(self, source_id: str) -> Source | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def database_url(self, override: str | None = None) -> str:
        """--db if given, else AGGREGATOR_DB_URL/settings, else data_dir's SQLite file."""
        return override or self.settings.resolved_db_url(self.base_dir)


# Words YAML 1.1 read as booleans; under 1.2 they are strings, so a boolean field rejects them.
_YAML_11_BOOLS = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")


def _position(tree: YamlTree, loc: Loc) -> tuple[int, int] | None:
    """1-based (line, column) of the deepest part of ``loc`` found in the document."""
    for end in range(len(loc), 0, -1):
        pos = tree.positions.get(loc[:end])
        if pos is not None:
            return pos
    return None


def _describe(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _value_at(root: Any, loc: Loc) -> Any:
    node = root
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


@functools.cache
def _field_kinds(model: type[BaseModel]) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    """A model's boolean fields, nested-model fields and list-of-model fields."""
    bools: list[str] = []
    nested: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if annotation is bool:
            bools.append(name)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested[name] = annotation
        elif get_origin(annotation) is list:
            (item_type,) = get_args(annotation)
            if isinstance(item_type, type) and issubclass(item_type, BaseModel):
                lists[name] = item_type
    return tuple(bools), nested, lists


def _bool_words(value: Any, model: type[BaseModel], loc: Loc) -> Iterator[Loc]:
    """Locations where a boolean field was given a YAML 1.1 word such as ``no`` or ``off``."""
    if not isinstance(value, dict):
        return
    bools, nested, lists = _field_kinds(model)
    for name in bools:
        child = value.get(name)
        if isinstance(child, str) and _YAML_11_BOOLS.match(child.strip()):
            yield (*loc, name)
    for name, submodel in nested.items():
        if name in value:
            yield from _bool_words(value[name], submodel, (*loc, name))
    for name, item_type in lists.items():
        items = value.get(name)
        if isinstance(items, list):
            for index, item in enumerate(items):
                yield from _bool_words(item, item_type, (*loc, name, index))


def parse_sources(
    text: str, filename: str = "sources.yaml", *, require_sources: bool = False
) -> SourcesFile:
    """Parse and validate sources.yaml text; raise ConfigError listing every problem."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark is harmless
    if not text.strip():
        raise ConfigError([f"{filename}: the file is empty; it needs a 'sources:' list"])
    tree = read_yaml(text, filename)
    return validate_tree(tree, filename, require_sources=require_sources)


def validate_tree(
    tree: YamlTree, filename: str = "sources.yaml", *, require_sources: bool = False
) -> SourcesFile:
    """Validate a document read by ``read_yaml``; raise ConfigError listing every problem.

    ``require_sources``: a file without a source is an error, for the commands that crawl (a
    digest that would stay empty for ever); a file of settings alone serves the others.
    """
    root = tree.root
    if root is None:
        raise ConfigError([f"{filename}: the file holds no settings or sources"])
    if not isinstance(root, dict):
        raise ConfigError([f"{filename}:1:1: expected a mapping with 'settings:' and 'sources:'"])
    if "sources" in root and not isinstance(root["sources"], list):
        line, col = tree.positions[("sources",)]
        got = "nothing" if root["sources"] is None else type(root["sources"]).__name__
        raise ConfigError(
            [
                f"{filename}:{line}:{col}: sources: expected a list of sources "
                f"(lines starting with '- id: ...'), got {got}"
            ]
        )
    problems: list[str] = []
    for loc in _bool_words(root, SourcesFile, ()):
        line, col = _position(tree, loc) or (0, 0)
        word = _value_at(root, loc)
        problems.append(
            f"{filename}:{line}:{col}: {_describe(loc)}: {word!r} is not a boolean here "
            "(YAML 1.2 reads it as a string); write true or false"
        )
    try:
        parsed = SourcesFile.model_validate(root)
    except ValidationError as exc:
        flagged = set(_bool_words(root, SourcesFile, ()))
        for err in exc.errors():
            loc = tuple(err["loc"])
            if loc in flagged:
                continue
            pos = _position(tree, loc)
            where = f"{filename}:{pos[0]}:{pos[1]}" if pos else filename
            msg = err["msg"]
            value = _value_at(root, loc)
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see README for the allowed fields)"
            elif isinstance(value, str) and _YAML_11_BOOLS.match(value):
                msg += f" (got the string {value!r}; write true or false)"
            elif err["type"] == "string_type" and value is not None:
                msg += f" (got {value!r}; put it in quotes to make it text)"
            problems.append(f"{where}: {_describe(loc)}: {msg}")
        raise ConfigError(problems) from exc
    if problems:
        raise ConfigError(problems)
    problems.extend(_duplicates(tree, parsed, filename))
    if require_sources and not parsed.sources:
        line, col = tree.positions.get(("sources",), (1, 1))
        problems.append(
            f"{filename}:{line}:{col}: sources: no source is listed, so every digest would be "
            "empty; add one (aggregator sources add URL) or see README, Configuration"
        )
    if problems:
        raise ConfigError(problems)
    return parsed


def _duplicates(tree: YamlTree, parsed: SourcesFile, filename: str) -> list[str]:
    problems: list[str] = []
    for field_name, normalise in (("id", str), ("url", url_key)):
        first: dict[str, int] = {}
        for index, source in enumerate(parsed.sources):
            key = normalise(getattr(source, field_name))
            line = (_position(tree, ("sources", index, field_name)) or (0, 0))[0]
            if key in first:
                problems.append(
                    f"{filename}:{line}: sources[{index}].{field_name}: duplicate "
                    f"{field_name} {getattr(source, field_name)!r}, "
                    f"first given on line {first[key]}"
                )
            else:
                first[key] = line
    return problems


def url_key(url: str) -> str:
    """What makes two feed URLs the same feed: identity.canonical_url, any scheme, no trailing /.

    URLs without a query or user info (nearly all feeds) take a shortcut with the same result.
    """
    parts = urlsplit(url.strip())
    if parts.query or "@" in parts.netloc or parts.scheme.lower() not in {"http", "https"}:
        canonical = urlsplit(canonical_url(url))
        return f"{canonical.netloc}{canonical.path.rstrip('/')}?{canonical.query}"
    return f"{host_and_port(parts)}{parts.path.rstrip('/')}?"


def load_config(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    *,
    require_sources: bool = False,
) -> Config:
    """Load and validate a sources file; the environment is layered over its settings."""
    if path is None:
        return Config(settings=apply_environment(Settings(), env), sources=())
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the sources file: {exc.strerror}"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path}:{line}: the file is not UTF-8 text (byte {exc.start})"]
        ) from exc
    if "\t" in text:
        for number, line_text in enumerate(text.splitlines(), start=1):
            indent = line_text[: len(line_text) - len(line_text.lstrip())]
            if "\t" in indent:
                col = indent.index("\t") + 1
                raise ConfigError([f"{path}:{number}:{col}: tab used for indentation; use spaces"])
    parsed = parse_sources(text, str(path), require_sources=require_sources)
    return Config(
        settings=apply_environment(parsed.settings, env),
        sources=tuple(parsed.sources),
        path=path.resolve(),
    )
