"""Feed items -> articles, and how an article page fills an article: pure decisions, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.parse import parse_feed
from aggregator.records import (
    Article,
    ExtractedPage,
    FeedItem,
    ParsedFeed,
)
from aggregator.sources.load import Source
from aggregator.times import plausible
from aggregator.urls import absolute_url, article_id, canonical_url

MAX_TITLE_FROM_TEXT = 120  # characters of text used as a title when an item has none


# -- pure decisions ------------------------------------------------------------------------------


Identity = tuple[str, str, str]  # (article id, canonical link, guid) of a feed item


def named_items(
    source: Source, feed: ParsedFeed, *, skip: Collection[str] = ()
) -> list[tuple[Identity, FeedItem]]:
    """Each usable item of a feed with its identity, first of each id only, in feed order;
    items whose id is in ``skip`` (already stored) are left out."""
    out: list[tuple[Identity, FeedItem]] = []
    seen = set(skip)
    for item in feed.items:
        identity = _identity(source, item)
        if identity is None or identity[0] in seen:
            continue
        seen.add(identity[0])
        out.append((identity, item))
    return out


def articles_from_feed(
    source: Source, feed: ParsedFeed, now: datetime, *, skip: Collection[str] = ()
) -> list[Article]:
    """A feed's items as Articles of ``source``, first of each id only, unusable items dropped.

    Items whose id is in ``skip`` (already stored) are left out before their text is made.
    """
    named = named_items(source, feed, skip=skip)
    return articles_from_items(source, named, [item.text for _, item in named], now, feed.language)


def articles_from_items(
    source: Source,
    named: Sequence[tuple[Identity, FeedItem]],
    texts: Sequence[str],
    now: datetime,
    feed_language: str = "",
) -> list[Article]:
    """Articles of ``source`` from named items and their plain texts (see item_texts)."""
    return [
        _article(source, item, now, identity, feed_language=feed_language, text=text)
        for (identity, item), text in zip(named, texts, strict=True)
    ]


@dataclass(frozen=True)
class FeedRead:
    """A feed read in one worker call: its items named and their plain text made."""

    items: int  # items in the feed
    language: str  # the feed's own language tag
    named: list[tuple[Identity, FeedItem]]
    texts: list[str]  # the plain text of each named item ("" past retention, see read_feed)


def read_feed(
    body: bytes,
    *,
    source: Source,
    url: str,
    content_type: str,
    max_items: int,
    now: datetime,
    text_after: datetime | None = None,
) -> FeedRead:
    """Parse a feed, name its items and make their text, for a source whose items are all new
    (its first crawl): one worker call instead of a parse, a lookup and a second call.
    Items published before ``text_after`` get no text (see past_retention)."""
    feed = parse_feed(body, url=url, content_type=content_type, max_items=max_items, now=now)
    named = named_items(source, feed)
    keep = [not past_retention(item, now, text_after) for _, item in named]
    made = iter(item_texts([item for (_, item), k in zip(named, keep, strict=True) if k]))
    texts = [next(made) if k else "" for k in keep]
    # The items go back without their markup, most of what would cross between the processes
    # to the crawl: their text is made, and is all the crawl uses.
    slim = [
        (identity, _without_markup(item, text))
        for (identity, item), text in zip(named, texts, strict=True)
    ]
    return FeedRead(len(feed.items), feed.language, slim, texts)


def _without_markup(item: FeedItem, text: str) -> FeedItem:
    """The item with its summary replaced by ``text``, plain, so ``item.text`` stays the same."""
    if not item.summary_is_html and item.summary == text:
        return item
    return replace(item, summary=text, summary_is_html=False)


def item_texts(items: Sequence[FeedItem]) -> list[str]:
    """The plain text of each item: the costly step of reading a feed, run in a worker."""
    return [item.text for item in items]


def past_retention(item: FeedItem, now: datetime, text_after: datetime | None) -> bool:
    """True for an item published before ``text_after`` (now - settings.retention_days): the
    next upkeep would drop its text (Storage.prune), so none is made, and no page fetched.
    It is still stored, link, title and times, so that it is known and never new again.
    An item without a title keeps its text, which its title is made from."""
    if text_after is None or not item.title:
        return False
    published = plausible(item.published, now)
    return published is not None and published < text_after


def article_from_item(
    source: Source, item: FeedItem, now: datetime, *, feed_language: str = ""
) -> Article | None:
    """One FeedItem -> Article; None when it has no link, GUID or content to name it by."""
    identity = _identity(source, item)
    if identity is None:
        return None
    return _article(source, item, now, identity, feed_language=feed_language)


def _identity(source: Source, item: FeedItem) -> Identity | None:
    """(article id, canonical link, guid) of an item; None when nothing names it."""
    link = absolute_url(item.link) or absolute_url(item.guid)
    guid = item.guid or ("" if link else _content_key(item))
    if not link and not guid:
        return None
    link = canonical_url(link) if link else ""
    return article_id(link, guid, source.id, canonical=True), link, guid


def _article(
    source: Source,
    item: FeedItem,
    now: datetime,
    identity: Identity,
    *,
    feed_language: str,
    text: str | None = None,
) -> Article:
    ident, link, _guid = identity
    text = item.text if text is None else text
    return Article(
        id=ident,
        url=link,
        title=item.title or _title_from_text(text),
        source_id=source.id,
        source_name=source.name,
        text=text,
        published=plausible(item.published, now),
        fetched_at=now,
        language=source.language or item.language or feed_language,
        author=item.author,
        image=item.image,
        guid=item.guid,
        category=source.category,
        weight=source.weight,
    )


def needs_page(
    article: Article, *, full_text: bool, short: int, text_after: datetime | None = None
) -> bool:
    """Fetch the article page for full-text sources and for items with thin feed text, unless
    the article was published before ``text_after`` (its text would be pruned)."""
    if text_after is not None and article.published is not None and article.published < text_after:
        return False
    return bool(article.url) and (full_text or len(article.text.strip()) < short)


def page_wants(article: Article) -> frozenset[str]:
    """The metadata merge_page could take from the article's page: what the feed left out."""
    have = {"title": article.title, "author": article.author, "image": article.image}
    wants = {name for name, value in have.items() if not value}
    return frozenset(wants if article.published else wants | {"published"})


def merge_page(article: Article, page: ExtractedPage | None, now: datetime) -> Article:
    """Fill an article from its extracted page: longer text wins; feed metadata is kept."""
    if page is None:
        return article
    text = page.text if len(page.text.strip()) > len(article.text.strip()) else article.text
    return replace(
        article,
        text=text,
        title=article.title or page.title,
        published=article.published or plausible(page.published, now),
        author=article.author or page.author,
        image=article.image or absolute_url(page.image),
        language=article.language or page.language,
    )


def not_a_feed_reason(exc: Exception) -> str:
    """The parser's reason, always as "not a feed: <why>"."""
    reason = (str(exc).strip() or type(exc).__name__).removesuffix(", not a feed")
    return reason if reason.startswith("not a feed") else f"not a feed: {reason}"


def _content_key(item: FeedItem) -> str:
    """A stable stand-in GUID for items with neither link nor GUID: a hash of their content."""
    content = f"{item.title}\n{item.text}".strip()
    if not content:
        return ""
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


def _title_from_text(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= MAX_TITLE_FROM_TEXT:
        return words
    return words[:MAX_TITLE_FROM_TEXT].rsplit(" ", 1)[0] + "…"
