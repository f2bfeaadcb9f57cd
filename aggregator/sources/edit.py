"""Edit sources.yaml in place: add sources, keeping the editor's comments, order and layout.

ruamel.yaml's round-trip mode reads the file into a tree that remembers comments and quoting;
we append to its ``sources:`` list and write it back with the indentation the file already uses.
The result is validated with the same rules as a run before it replaces the file, and it replaces
it atomically (a temporary file renamed over it), so a failed edit leaves the file as it was.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from aggregator.errors import ConfigError, DuplicateSourceError, OpmlError, UserError
from aggregator.sources.load import ID_PATTERN, SourcesFile, parse_sources, url_key, validate_tree
from aggregator.sources.opml import read_opml
from aggregator.sources.reader import read_yaml
from aggregator.urls import absolute_url

MAX_ID_CHARS = 48
NEW_FILE = "# Feeds for aggregator: see README.md, section Configuration.\nsources: []\n"
_ID_RE = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class NewSource:
    """A source to append; empty optional fields are left out of the file."""

    url: str
    name: str
    id: str = ""  # derived from the name or the host when empty
    category: str = ""
    language: str = ""


def slug(text: str) -> str:
    """Lowercase ASCII words joined by '-', for ids: "BBC News – World" -> "bbc-news-world"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:MAX_ID_CHARS].strip("-")


def host_slug(url: str) -> str:
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    return slug(host.replace(".", "-"))


def unique_id(wanted: str, taken: set[str]) -> str:
    """``wanted`` if free, else ``wanted-2``, ``wanted-3``..."""
    base = wanted or "feed"
    candidate, number = base, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = base[: MAX_ID_CHARS - len(suffix)].rstrip("-") + suffix
        number += 1
    return candidate


class SourcesDocument:
    """sources.yaml opened for editing (created on save when it does not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.original = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        if not self.original.strip():
            self.original = NEW_FILE
        self.bom = self.original.startswith("\ufeff")
        text = self.original.removeprefix("\ufeff")
        self._tree = read_yaml(text, str(self.path))
        if self._tree.root is None:  # comments only: keep them, add a list
            text = text.rstrip("\n") + "\nsources: []\n"
            self._tree = read_yaml(text, str(self.path))
        # refuse to edit a bad file
        self.parsed: SourcesFile = validate_tree(self._tree, str(self.path))
        self.base_text = text
        self.ids = {s.id for s in self.parsed.sources}
        self.urls = {url_key(s.url): s.id for s in self.parsed.sources}
        self.pending: list[CommentedMap] = []  # entries added, in order, not yet saved
        self.added: list[str] = []

    def existing(self, url: str) -> str | None:
        """The id of the source with this feed URL (compared canonically), if any."""
        return self.urls.get(url_key(url))

    def add(self, source: NewSource) -> str:
        """Append a source; return its id. Raise DuplicateSourceError, or UserError for a bad id."""
        found = self.existing(source.url)
        if found is not None:
            raise DuplicateSourceError(source.url, found)
        host = (urlsplit(source.url).hostname or "").removeprefix("www.")
        name = " ".join(source.name.split())[:200] or host
        if source.id:
            if not _ID_RE.match(source.id):
                raise UserError(
                    f"id {source.id!r}: use lowercase letters, digits, '-', '_' or '.', "
                    "starting with a letter or digit"
                )
            if source.id in self.ids:
                raise UserError(f"id {source.id!r} is taken; choose another with --id")
            new_id = source.id
        else:
            new_id = unique_id(slug(name) or host_slug(source.url), self.ids)
        entry = CommentedMap()
        entry["id"] = new_id
        entry["name"] = name or new_id
        entry["url"] = source.url
        if source.category:
            entry["category"] = source.category.strip()[:60]
        if source.language:
            entry["language"] = source.language.strip()[:20]
        self.pending.append(entry)
        self.ids.add(new_id)
        self.urls[url_key(source.url)] = new_id
        self.added.append(new_id)
        return new_id

    def text(self) -> str:
        """The file's new text: the old text with the new entries appended to ``sources:``."""
        body = (self._appended() or self._round_tripped()) if self.pending else self.base_text
        return ("\ufeff" if self.bom else "") + body

    def _appended(self) -> str | None:
        """Fast path, byte-exact by construction: when ``sources:`` is the file's last block and
        a block list, the new entries are written after the last line; None when it is not."""
        tree = self._tree
        root = tree.root
        if not isinstance(root, dict) or list(root)[-1:] != ["sources"] or not root["sources"]:
            return None
        line, column = tree.positions[("sources", 0)]
        first_item = self.base_text.splitlines()[line - 1]
        if first_item[: column - 1].strip() != "-":  # a flow list: [ ... ]
            return None
        out = io.StringIO()
        _round_trip(self.base_text).dump(CommentedSeq(self.pending), out)
        text = self.base_text if self.base_text.endswith("\n") else self.base_text + "\n"
        text += out.getvalue()
        check = read_yaml(text, str(self.path)).root
        ids = [item.get("id") for item in check.get("sources") or [] if isinstance(item, dict)]
        expected = [s.id for s in self.parsed.sources] + [e["id"] for e in self.pending]
        return text if ids == expected else None

    def _round_tripped(self) -> str:
        """The general path: ruamel reads the whole file, we append, ruamel writes it back."""
        yaml = _round_trip(self.base_text)
        try:
            data = yaml.load(self.base_text)
        except YAMLError as exc:  # pragma: no cover - parse_sources has already accepted it
            raise ConfigError([f"{self.path}: cannot edit: {exc}"]) from exc
        if data is None:
            data = CommentedMap()
        seq = data.get("sources")
        if not isinstance(seq, CommentedSeq) or not seq:
            # missing, empty (`sources:`) or `sources: []`: start a block-style list
            data["sources"] = seq = CommentedSeq()
        _move_trailing_comment(seq, self.pending)
        seq.extend(self.pending)
        out = io.StringIO()
        yaml.dump(data, out)
        return out.getvalue()

    def save(self) -> SourcesFile:
        """Validate the edited text, then replace the file atomically; return what it holds."""
        text = self.text()
        parsed = parse_sources(text, str(self.path))
        write_atomically(self.path, text)
        self.original, self.parsed = text, parsed
        return parsed


def _move_trailing_comment(seq: CommentedSeq, new: list[CommentedMap]) -> None:
    """ruamel hangs the lines after a list (a blank line, a comment about the next block) on its
    last item; keep them after the list by moving them to the last new item."""
    if not seq or not new or not isinstance(seq[-1], CommentedMap) or not seq[-1]:
        return
    last_key = list(seq[-1])[-1]
    tokens = seq[-1].ca.items.get(last_key)
    if not tokens or len(tokens) < 3 or tokens[2] is None:
        return
    token = tokens[2]
    same_line, newline, rest = token.value.partition("\n")
    if not rest.strip():
        return
    token.value = same_line + newline  # the end-of-line comment stays where it was
    new[-1].ca.items[list(new[-1])[-1]] = [
        None,
        None,
        CommentToken("\n" + rest, CommentMark(0)),
        None,
    ]


def _round_trip(text: str) -> YAML:
    """A round-trip YAML that writes with the indentation the file already uses."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an editor's long lines
    mapping, sequence, offset = _guess_indent(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


_KEY_LINE = re.compile(r"^( *)[^\s#-][^:#]*:\s*(?:#.*)?$")  # "key:" opening a block
_ITEM_LINE = re.compile(r"^( *)(- +)\S")


def _guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indents as ruamel counts them, read off the file's layout."""
    mapping, sequence, offset = 2, 4, 2  # the README's layout: "  - id: ..."
    found_mapping = found_sequence = False
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line, following in itertools.pairwise(lines):
        key = _KEY_LINE.match(line)
        if key is None:
            continue
        parent = len(key.group(1))
        item = _ITEM_LINE.match(following)
        if item and not found_sequence:
            offset = len(item.group(1)) - parent
            sequence = offset + len(item.group(2))
            found_sequence = True
        elif not item and not found_mapping:
            indent = len(following) - len(following.lstrip(" "))
            if indent > parent:
                mapping, found_mapping = indent - parent, True
        if found_mapping and found_sequence:
            break
    return mapping, max(sequence, offset + 2), offset


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_many(
    doc: SourcesDocument, sources: Iterable[NewSource]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Add each source that is not listed yet: (ids added, (url, reason) of those skipped)."""
    added: list[str] = []
    skipped: list[tuple[str, str]] = []
    for source in sources:
        try:
            added.append(doc.add(source))
        except DuplicateSourceError as exc:
            skipped.append((source.url, f"already listed as '{exc.existing}'"))
        except UserError as exc:
            skipped.append((source.url, str(exc)))
    return added, skipped


@dataclass(frozen=True)
class OpmlImport:
    added: list[str]  # ids of the sources added
    skipped: list[tuple[str, str]]  # (url, reason) of feeds already listed or refused
    unusable: int  # outlines without an http(s) feed URL


def import_opml(
    opml_file: str | Path, sources_file: str | Path, *, category: str | None = None
) -> OpmlImport:
    """Add an OPML file's feeds to the sources file (made when missing), comments kept.

    ``category`` overrides every feed's folder. Raises UserError naming the OPML file when it
    cannot be read or is not OPML; the sources file is written only when a feed was added.
    """
    try:
        feeds = read_opml(Path(opml_file).read_bytes())
    except OSError as exc:
        raise UserError(f"{opml_file}: cannot read: {exc.strerror}") from exc
    except OpmlError as exc:
        raise UserError(f"{opml_file}: {exc}") from exc
    doc = SourcesDocument(Path(sources_file))
    new = [
        NewSource(url=f.url, name=f.title, category=category or f.category, language=f.language)
        for f in feeds
        if absolute_url(f.url)
    ]
    added, skipped = add_many(doc, new)
    if added:
        doc.save()
    return OpmlImport(added=added, skipped=skipped, unusable=len(feeds) - len(new))
