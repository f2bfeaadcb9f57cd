"""What both parsing paths share: caps, language tags, plain text of a feed value, image media."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aggregator.records import MAX_URL_CHARS, FeedItem
from aggregator.text import clean_text, html_to_text
from aggregator.urls import absolute_url

MARKUP = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s>/]|/[a-zA-Z]|!--)")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg")


def has_content(item: FeedItem) -> bool:
    """False for the empty shell a truncated document can leave as its last entry."""
    return bool(item.link or item.guid or item.title or item.text)


def plain_line(value: object, detail: Mapping[str, Any] | None = None) -> str:
    """Plain text of a feedparser value: HTML converted, text cleaned, one line."""
    text = str(value or "")
    kind = str((detail or {}).get("type") or "")
    # feedparser marks a value HTML when it saw markup; entities double-escaped by publishers
    # ("&amp;amp;") survive as "&amp;" in plain text, so those get HTML treatment too.
    if "html" in kind or "&" in text:
        text = html_to_text(text)
    return " ".join(clean_text(text).split())


def feed_link(link: object, base: str) -> str:
    """A link from a feed as an absolute http(s) URL, or "" (javascript:, mailto:, garbage)."""
    if isinstance(link, str) and len(link.strip()) > MAX_URL_CHARS:
        return ""
    return absolute_url(link, base)


def struct_to_datetime(value: object) -> datetime | None:
    """feedparser's UTC struct_time -> aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def looks_like_image(media: Mapping[str, Any]) -> bool:
    """True for media declared as an image, or an untyped URL with an image file suffix."""
    kind = str(media.get("type") or "")
    if kind:
        return kind.startswith("image/")
    if str(media.get("medium") or "") == "image":
        return True
    url = str(media.get("url") or media.get("href") or "")
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)
