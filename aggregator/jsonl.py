"""JSON Lines in and out: the `ingest` reader and the `export` shapes other tools depend on.

Article lines (read by `ingest`, written by `export articles`): ``url`` (required), ``title``,
``text``, ``source`` (name or domain), ``published`` (ISO 8601), ``language``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO
from urllib.parse import urlsplit

from aggregator.records import (
    MAX_NAME_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    Article,
    Story,
    Summary,
    SummaryItem,
    SummaryItems,
)
from aggregator.text import clean_text, language_tag, one_line
from aggregator.times import iso, parse_iso, plausible
from aggregator.urls import absolute_url, article_id, canonical_url

if TYPE_CHECKING:
    from aggregator.store.storage import Storage

MAX_LINE_BYTES = 5_000_000  # a line longer than this is refused, not read into memory
BATCH = 2_000  # articles stored per transaction: a long file never waits whole in memory


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class IngestReport:
    stored: int  # articles new to the store
    present: int  # good lines whose article was stored already (by an earlier run or line)
    errors: list[LineError]  # bad lines, in file order; the good lines are stored regardless


def source_key(name: str) -> str:
    """A source id for an ingested article: the source's name or domain as a slug."""
    slug = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-.")
    return slug[:64] or "unknown"


def article_from_json(obj: Any, fetched_at: datetime) -> Article:
    """One ingest line -> Article, with the caps and date sanity a feed item gets.

    Raises ValueError naming the bad field. Titles and names are cut to the lengths a feed's
    are cut to, text to MAX_SUMMARY_CHARS; a ``published`` time before times.EARLIEST_DATE or
    past ``fetched_at`` (with times.FUTURE_SLACK) is dropped, as a feed's would be.
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    url = obj.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("'url' is required and must be a non-empty string")
    if len(url.strip()) > MAX_URL_CHARS:
        raise ValueError(f"'url' is longer than {MAX_URL_CHARS} characters")
    link = absolute_url(url)
    if not link:
        raise ValueError(f"'url' must be an http(s) URL, got {url[:80]!r}")
    host = urlsplit(link).hostname or ""
    fields: dict[str, str] = {}
    for key in ("title", "text", "source", "language"):
        value = obj.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(f"'{key}' must be a string")
        fields[key] = value.strip()
    language = language_tag(fields["language"])
    if fields["language"] and not language:
        raise ValueError(f"'language' is not a language tag: {fields['language'][:40]!r}")
    published = None
    if obj.get("published") not in (None, ""):
        raw = obj["published"]
        if not isinstance(raw, str):
            raise ValueError("'published' must be an ISO 8601 string")
        try:
            published = parse_iso(raw)
        except ValueError as exc:
            raise ValueError(f"'published' is not an ISO 8601 time: {raw[:40]!r}") from exc
    unknown = sorted(set(obj) - {"url", "title", "text", "source", "published", "language"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    source_name = one_line(fields["source"])[:MAX_NAME_CHARS] or host.removeprefix("www.")
    canonical = canonical_url(link)
    return Article(
        id=article_id(canonical),
        url=canonical,
        title=one_line(fields["title"])[:MAX_TITLE_CHARS] or canonical,
        source_id=source_key(source_name),
        source_name=source_name,
        text=clean_text(fields["text"])[:MAX_SUMMARY_CHARS],
        published=plausible(published, fetched_at),
        fetched_at=fetched_at,
        language=language,
    )


def json_error(exc: json.JSONDecodeError) -> str:
    """A decoder error as "<what> at column N" (its message alone ends some with "at")."""
    what = exc.msg.removesuffix(" at").strip()
    return f"invalid JSON: {what} at column {exc.colno}"


def read_articles(
    stream: BinaryIO, fetched_at: datetime
) -> Iterator[tuple[int, Article | LineError]]:
    """Yield (line number, Article or LineError) for each non-blank line of UTF-8 JSON Lines.

    A line that is not UTF-8, not JSON or not an article is that line's error; the others are
    read. A byte order mark at the start of the file is skipped.
    """
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                raw = stream.readline(MAX_LINE_BYTES)
            yield number, LineError(number, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1]
            yield number, LineError(number, f"not UTF-8 text (byte {exc.start + 1}: {bad!r})")
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, json_error(exc))
            continue
        try:
            yield number, article_from_json(obj, fetched_at)
        except ValueError as exc:
            yield number, LineError(number, str(exc))


def ingest(stream: BinaryIO, storage: Storage, fetched_at: datetime) -> IngestReport:
    """Store the articles of a JSON Lines stream; bad lines are reported, never fatal.

    Articles are stored in batches as they are read; a rerun of the same file stores nothing
    twice (an article's id comes from its canonical URL).
    """
    stored = present = 0
    errors: list[LineError] = []
    batch: list[Article] = []

    def flush() -> None:
        nonlocal stored, present
        inserted = storage.add_articles(batch)
        stored += len(inserted)
        present += len(batch) - len(inserted)
        batch.clear()

    for _, item in read_articles(stream, fetched_at):
        if isinstance(item, LineError):
            errors.append(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    flush()
    return IngestReport(stored=stored, present=present, errors=errors)


def article_to_json(article: Article) -> dict[str, Any]:
    """The ingest shape: exporting then ingesting gives the same articles."""
    out: dict[str, Any] = {
        "url": article.url,
        "title": article.title,
        "text": article.text,
        "source": article.source_name,
        "published": iso(article.published),
    }
    if article.language:
        out["language"] = article.language
    return out


def story_to_json(
    story: Story, summary: Summary | None, articles: Mapping[str, Article]
) -> dict[str, Any]:
    """The `export stories` shape (see DESIGN.md, "Interfaces others depend on")."""
    members = [articles[a] for a in story.article_ids if a in articles]
    citations = []
    if summary is not None:
        for sentence in summary.sentences:
            cited = [articles[a] for a in sentence.citations if a in articles]
            citations.append(
                {
                    "text": sentence.text,
                    "articles": [{"url": a.url, "source": a.source_name} for a in cited],
                }
            )
    items = summary.items if summary is not None else SummaryItems()
    why = items.why_it_matters

    def item_json(item: SummaryItem, **extra: str) -> dict[str, Any]:
        found = [articles[a] for a in item.citations if a in articles]
        return {
            **extra,
            "text": item.text,
            "articles": [{"url": a.url, "source": a.source_name} for a in found],
        }

    return {
        "id": story.id,
        "title": summary.headline if summary and summary.headline else story.title,
        "summary": " ".join(s.text for s in summary.sentences) if summary else "",
        "score": round(story.score, 6),
        "first_seen": iso(story.first_seen),
        "updated": iso(story.updated),
        "articles": [{"url": a.url, "title": a.title, "source": a.source_name} for a in members],
        "citations": citations,
        "talking_points": [item_json(i) for i in items.talking_points],
        "perspectives": [item_json(i, who=i.who) for i in items.perspectives],
        "timeline": [item_json(i, date=i.when) for i in items.timeline],
        "why_it_matters": item_json(why) if why is not None else None,
    }


def write_lines(stream: TextIO, objects: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    for obj in objects:
        stream.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count
