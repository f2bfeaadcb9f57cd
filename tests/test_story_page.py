"""A story page beyond its summary: the coverage grouped by outlet when an outlet ran several
articles, how the story grew (reports within 30 minutes are one moment), related stories."""

from __future__ import annotations

from datetime import timedelta

from lxml import html as lxml_html

from aggregator.records import Story, Summary, SummarySentence
from aggregator.render.coverage import by_outlet, history, related_stories
from aggregator.render.pages import build_site
from aggregator.render.views import site_view, story_view
from tests.test_render import NOW, SETTINGS, article

SITE = site_view(SETTINGS)
ARTICLES = {
    a.id: a
    for a in (
        article(1, 9, source_name="Wire", title="Dam breach floods valley towns"),
        article(2, 8.8, source_name="Wire", title="Valley flood: rescuers reach villages"),
        article(3, 8.7, source_name="Daily", title="Flooding after dam breach"),
        article(4, 3, source_name="Herald", title="Dam operator blamed for breach"),
        article(5, 2, source_name="Wire", title="Chess champion retains title", category="Sport"),
        article(6, 1, source_name="Daily", title="Valley dam breach: who pays for the floods?"),
    )
}
STORIES = [
    Story(id="flood", article_ids=("a1", "a2", "a3", "a4"), title="Dam breach floods valley",
          first_seen=NOW - timedelta(hours=9), category="Local"),
    Story(id="chess", article_ids=("a5",), title="Chess champion retains title",
          first_seen=NOW - timedelta(hours=2), category="Sport"),
    Story(id="costs", article_ids=("a6",), title="Valley dam breach: who pays for the floods?",
          first_seen=NOW - timedelta(hours=1), category="Local"),
]  # fmt: skip
SUMMARIES = {
    "flood": Summary(
        story_id="flood",
        headline="Dam breach floods valley towns",
        sentences=(SummarySentence("The valley dam breached, flooding towns.", ("a1", "a3")),),
        method="extractive",
    )
}


def view(story: Story):  # type: ignore[no-untyped-def]
    return story_view(story, SUMMARIES.get(story.id), ARTICLES, SITE, NOW)


def test_coverage_is_grouped_by_outlet_in_the_order_they_first_reported() -> None:
    groups = by_outlet(view(STORIES[0]))
    assert [(g.name, [s.number for s in g.articles]) for g in groups] == [
        ("Wire", [1, 2]),
        ("Daily", [3]),
        ("Herald", [4]),
    ]


def test_history_joins_reports_that_came_within_half_an_hour() -> None:
    moments = history(view(STORIES[0]))
    assert [(m.time.iso, m.outlets, m.articles) for m in moments] == [
        ("2025-03-14T03:00:00Z", ("Wire", "Daily"), 3),  # 9 h, 8.8 h and 8.7 h ago
        ("2025-03-14T09:00:00Z", ("Herald",), 1),
    ]
    assert history(view(STORIES[1])) == ()  # one report: nothing grew


def test_related_stories_share_words_and_never_include_themselves() -> None:
    views = [view(s) for s in STORIES]
    related = related_stories(views)
    assert [v.name for v in related["flood"]] == ["costs"]  # chess shares nothing, other channel
    assert [v.name for v in related["costs"]] == ["flood"]
    assert related["chess"] == ()


def test_the_story_page_shows_outlets_history_and_related_links() -> None:
    settings = SETTINGS.model_copy(update={"max_stories": 10})
    files = build_site(STORIES, SUMMARIES, ARTICLES, settings, NOW)
    page = lxml_html.fromstring(files["stories/flood.html"])
    assert [h.text_content() for h in page.xpath("//h3[@class='outlet']")] == [
        "Wire",
        "Daily",
        "Herald",
    ]
    history_items = [li.text_content() for li in page.xpath("//ol[@class='history']/li")]
    assert history_items == [
        "9 h ago: first reported by Wire, Daily",
        "3 h ago: Herald reported",
    ]
    assert [a.get("href") for a in page.xpath("//aside[@class='related']//a")] == [
        "../stories/costs.html"
    ]
    single = lxml_html.fromstring(files["stories/chess.html"])
    assert not single.xpath("//h3[@class='outlet']") and not single.xpath("//ol[@class='history']")
    assert not single.xpath("//aside[@class='related']")
