"""The daily edition: a page per day with that day's top stories as they stood at its last
render, an index of days, and a daily-digest feed with one item per finished day.

Today's edition is taken from the page being rendered (``edition_of``); the days before come
from the database (``Storage.editions``), snapshots of what each day's last render published,
so a past day renders the same after its stories leave the window and their text is pruned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aggregator.cluster.dedupe import originals
from aggregator.records import Article, Edition, EditionStory, Story, Summary
from aggregator.render.strings import ENGLISH, date_text
from aggregator.render.views import StoryView, TimeView, safe_url
from aggregator.times import as_utc

DIGEST_DAYS = 30  # days (items) in the daily-digest feeds


def day_of(when: datetime, timezone: str = "UTC") -> date:
    """The calendar day ``when`` falls on in ``timezone`` (settings.timezone)."""
    return as_utc(when).astimezone(ZoneInfo(timezone)).date()


def day_label(day: date, strings: Mapping[str, str] = ENGLISH) -> str:
    """ "Wed 2 Dec 2026", in the site's language."""
    return date_text(day, strings)


def lead_image(story: Story, articles: Mapping[str, Article]) -> str:
    """The lead image of a story: the first http(s) image of its articles (originals before
    their copies, then the sources the editor weighs most, then story order: the earliest
    report), from the page's og:image or the feed's media; "" for none."""
    members = [articles[a] for a in dict.fromkeys(story.article_ids) if a in articles]
    original = originals(members)
    ordered = sorted(members, key=lambda a: (original[a.id].id != a.id, -a.weight))  # stable
    return next((url for a in ordered if (url := safe_url(a.image))), "")


def edition_of(
    stories: Sequence[Story],
    summaries: Mapping[str, Summary],
    articles: Mapping[str, Article],
    now: datetime,
    timezone: str = "UTC",
) -> Edition:
    """Today's edition: the page's stories (already ranked and cut) as they are published now."""
    entries = tuple(
        EditionStory(story=s, summary=summaries.get(s.id), image=lead_image(s, articles))
        for s in dict((s.id, s) for s in stories).values()
    )
    return Edition(day=day_of(now, timezone), published=as_utc(now), stories=entries)


@dataclass(frozen=True)
class DayLink:
    """A day as the other days' pages link to it."""

    day: str  # 2026-12-02
    label: str  # Wed 2 Dec 2026
    path: str  # "day/2026-12-02/index.html", relative to the site root


@dataclass(frozen=True)
class EditionView:
    """One day's page, its neighbours and its entry in the digest feeds."""

    link: DayLink
    url: str  # absolute URL of the day's page: also the digest entry's id
    published: TimeView  # the render that left the day as it stands
    final: bool  # the day is over (an earlier day than the render's)
    stories: tuple[StoryView, ...]  # as published that day, in rank order
    previous: DayLink | None = None
    next: DayLink | None = None
    # for the digest feeds, which read an edition as they read a story:
    headline: str = ""  # "Daily edition: Wed 2 Dec 2026"
    category: str = ""
    content_html: str = ""  # sanitised HTML: the day's headlines, linked, with their summaries

    @property
    def first_seen(self) -> TimeView:
        return self.published

    @property
    def updated(self) -> TimeView:
        return self.published


def day_link(day: date, strings: Mapping[str, str] = ENGLISH) -> DayLink:
    iso = day.isoformat()
    return DayLink(day=iso, label=day_label(day, strings), path=f"day/{iso}/index.html")


def merged_editions(stored: Sequence[Edition], today: Edition) -> list[Edition]:
    """The stored days with today's in place of what the database had for today, oldest first."""
    days = {e.day: e for e in stored}
    days[today.day] = today
    return [days[d] for d in sorted(days)]
