"""sources.yaml -> validated settings and Source records; errors name file, line and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from aggregator.config import Settings, apply_environment

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

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.strip()


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


class ConfigError(Exception):
    """sources.yaml is unusable; ``problems`` holds one ``file:line:col: message`` each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


_YAML_11_BOOLS = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")


def _position(root: Any, loc: tuple[int | str, ...]) -> tuple[int, int] | None:
    """1-based (line, column) of the value at ``loc`` in a ruamel round-trip tree."""
    node = root
    pos: tuple[int, int] | None = None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
            pos = (line + 1, col + 1)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            pos = (line + 1, col + 1)
            node = node[key]
        else:
            break
    return pos


def _describe(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _value_at(root: Any, loc: tuple[int | str, ...]) -> Any:
    node = root
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def parse_sources(text: str, filename: str = "sources.yaml") -> SourcesFile:
    """Parse and validate sources.yaml text; raise ConfigError listing every problem."""
    if not text.strip():
        raise ConfigError([f"{filename}: the file is empty; it needs a 'sources:' list"])
    yaml = YAML(typ="rt")  # round-trip keeps line numbers; it refuses unsafe tags
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except DuplicateKeyError as exc:
        raise ConfigError([_marked(filename, exc, "duplicate key")]) from exc
    except MarkedYAMLError as exc:
        raise ConfigError([_marked(filename, exc, "YAML syntax error")]) from exc
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors in practice
        raise ConfigError([f"{filename}: YAML error: {exc}"]) from exc
    if root is None:
        raise ConfigError([f"{filename}: the file holds no settings or sources"])
    if not isinstance(root, CommentedMap):
        raise ConfigError([f"{filename}:1:1: expected a mapping with 'settings:' and 'sources:'"])
    problems: list[str] = []
    try:
        parsed = SourcesFile.model_validate(_plain(root))
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            pos = _position(root, loc)
            where = f"{filename}:{pos[0]}:{pos[1]}" if pos else filename
            msg = err["msg"]
            value = _value_at(root, loc)
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see README for the allowed fields)"
            elif isinstance(value, str) and _YAML_11_BOOLS.match(value):
                msg += f" (got the string {value!r}; write true or false)"
            problems.append(f"{where}: {_describe(loc)}: {msg}")
        raise ConfigError(problems) from exc
    problems.extend(_duplicates(root, parsed, filename))
    if problems:
        raise ConfigError(problems)
    return parsed


def _marked(filename: str, exc: MarkedYAMLError, what: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return f"{where}: {what}: {detail}".rstrip(": ")


def _plain(node: Any) -> Any:
    """ruamel containers -> plain dicts and lists for pydantic."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _duplicates(root: CommentedMap, parsed: SourcesFile, filename: str) -> list[str]:
    problems: list[str] = []
    for field_name, normalise in (("id", str), ("url", _url_key)):
        first: dict[str, int] = {}
        for index, source in enumerate(parsed.sources):
            key = normalise(getattr(source, field_name))
            line = (_position(root, ("sources", index, field_name)) or (0, 0))[0]
            if key in first:
                problems.append(
                    f"{filename}:{line}: sources[{index}].{field_name}: duplicate "
                    f"{field_name} {getattr(source, field_name)!r}, "
                    f"first given on line {first[key]}"
                )
            else:
                first[key] = line
    return problems


def _url_key(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}{parts.path.rstrip('/')}?{parts.query}"


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
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
    parsed = parse_sources(text, str(path))
    return Config(
        settings=apply_environment(parsed.settings, env),
        sources=tuple(parsed.sources),
        path=path.resolve(),
    )
