"""JSON Lines in and out: the `ingest` reader and the `export` shapes other tools depend on.

Article lines (read by `ingest`, written by `export articles`): ``url`` (required), ``title``,
``text``, ``source`` (name or domain), ``published`` (ISO 8601), ``language``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from aggregator.records import Article, Story, Summary
from aggregator.times import iso, parse_iso
from aggregator.urls import absolute_url, article_id, canonical_url

MAX_LINE_CHARS = 5_000_000


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def source_key(name: str) -> str:
    """A source id for an ingested article: the source's name or domain as a slug."""
    slug = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-.")
    return slug[:64] or "unknown"


def article_from_json(obj: Any, fetched_at: datetime) -> Article:
    """One ingest line -> Article; raises ValueError naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    url = obj.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("'url' is required and must be a non-empty string")
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
    source_name = fields["source"] or host.removeprefix("www.")
    canonical = canonical_url(link)
    return Article(
        id=article_id(canonical),
        url=canonical,
        title=fields["title"] or canonical,
        source_id=source_key(source_name),
        source_name=source_name,
        text=fields["text"],
        published=published,
        fetched_at=fetched_at,
        language=fields["language"],
    )


def read_articles(
    stream: TextIO, fetched_at: datetime
) -> Iterator[tuple[int, Article | LineError]]:
    """Yield (line number, Article or LineError) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            yield number, LineError(number, f"line longer than {MAX_LINE_CHARS} characters")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        try:
            yield number, article_from_json(obj, fetched_at)
        except ValueError as exc:
            yield number, LineError(number, str(exc))


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
    return {
        "id": story.id,
        "title": summary.headline if summary and summary.headline else story.title,
        "summary": " ".join(s.text for s in summary.sentences) if summary else "",
        "score": round(story.score, 6),
        "first_seen": iso(story.first_seen),
        "updated": iso(story.updated),
        "articles": [{"url": a.url, "title": a.title, "source": a.source_name} for a in members],
        "citations": citations,
    }


def write_lines(stream: TextIO, objects: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    for obj in objects:
        stream.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count
