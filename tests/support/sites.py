"""Small fixed sites for the site checks: one whose interface and articles are Chinese, and one
made of hostile text. Both are pure ``build_site`` output: path -> bytes, the same every time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import lxml.html

from aggregator.records import (
    Article,
    Score,
    Story,
    Summary,
    SummaryItem,
    SummaryItems,
    SummarySentence,
)
from aggregator.render.pages import build_site
from aggregator.settings import Settings

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CHINESE_SETTINGS = Settings(
    title="每日新闻摘要",
    description="由机器根据多家媒体的报道撰写的新闻摘要，每句话都附有来源。",
    site_url="https://news.example.cn/",
    language="zh",
    max_stories=5,
)

# (outlet, title, category, hours ago) of each article; stories below group them.
_CHINESE_ARTICLES = {
    "z1": ("新华网", "长江大桥维修完成后重新通车，限速每小时三十公里", "国内", 7.0),
    "z2": ("人民网", "大桥今晨恢复通车　市民：上班路程缩短了半小时", "国内", 6.5),
    "z3": ("澎湃新闻", "长江大桥重新开放：维修为何用了整整两个星期？", "国内", 3.0),
    "z4": ("财新网", "央行宣布下调存款准备金率零点五个百分点", "财经", 5.0),
    "z5": ("第一财经", "降准释放长期资金约一万亿元，市场反应平稳", "财经", 4.0),
    "z6": ("科技日报", "国产大型客机完成首次跨洋试飞", "科技", 2.0),
}


def _chinese_article(article_id: str) -> Article:
    outlet, title, category, hours = _CHINESE_ARTICLES[article_id]
    return Article(
        id=article_id,
        url=f"https://{article_id}.news.example.cn/2025/03/{article_id}.html",
        title=title,
        source_id=f"outlet-{article_id}",
        source_name=outlet,
        published=NOW - timedelta(hours=hours),
        fetched_at=NOW - timedelta(hours=hours),
        text=f"{title}。{outlet}记者报道，详细情况请见原文。",
        category=category,
        language="zh",
    )


def chinese_site() -> dict[str, bytes]:
    """Three stories in three channels, Chinese throughout: interface, headlines, summaries;
    and the page of a story merged into another."""
    articles = {a: _chinese_article(a) for a in _CHINESE_ARTICLES}
    stories = [
        Story(
            id="bridge",
            article_ids=("z1", "z2", "z3"),
            title="长江大桥重新通车",
            first_seen=NOW - timedelta(hours=7),
            updated=NOW - timedelta(hours=3),
            category="国内",
            score_parts=Score(score=3.1, sources=3, age_hours=7),
        ),
        Story(
            id="rates",
            article_ids=("z4", "z5"),
            title="央行下调存款准备金率",
            first_seen=NOW - timedelta(hours=5),
            updated=NOW - timedelta(hours=4),
            category="财经",
        ),
        Story(
            id="plane",
            article_ids=("z6",),
            title="国产大型客机完成首次跨洋试飞",
            first_seen=NOW - timedelta(hours=2),
            updated=NOW - timedelta(hours=2),
            category="科技",
        ),
    ]
    summaries = {
        "bridge": Summary(
            story_id="bridge",
            headline="长江大桥维修两周后重新通车",
            sentences=(
                SummarySentence(
                    "长江大桥在完成为期两周的维修后，于周五早上重新通车。", ("z1", "z2")
                ),
                SummarySentence("维修期间发现主跨存在裂缝，目前限速每小时三十公里。", ("z1", "z3")),
            ),
            method="llm",
        ),
        "rates": Summary(
            story_id="rates",
            headline="央行下调存款准备金率，释放资金约一万亿元",
            sentences=(
                SummarySentence("中国人民银行宣布下调存款准备金率零点五个百分点。", ("z4",)),
                SummarySentence("此举预计释放长期资金约一万亿元，市场反应平稳。", ("z5",)),
            ),
            method="llm",
        ),
    }
    # a story merged into the bridge's: its page sends readers on
    redirects = {"bridge-old": "bridge"}
    return build_site(stories, summaries, articles, CHINESE_SETTINGS, NOW, redirects=redirects)


# --- hostile text ---------------------------------------------------------------------------

NASTY = (
    "Ends ]]> here </script><script>alert(2)</script> javascript:alert(3) nul\x00 vt\x0b \ud800."
    ' <img src=x onerror=alert(4)> <a href="javascript:alert(5)">click</a>'
    f" {'W' * 160} https://example.org/{'x' * 160}"  # words wider than a phone
)


def hostile_site() -> dict[str, bytes]:
    """One story whose every field a feed or an outlet could fill is an attack on the page."""
    bad = Article(
        id="a1",
        url="JaVaScRiPt:alert(1)",
        title="<img src=x onerror=alert(1)>",
        source_id="outlet1",
        source_name="</script><b>Evil</b>\x00",
        published=NOW - timedelta(hours=1),
        text=NASTY,
        category="Local",
    )
    good = Article(
        id="a2",
        url="https://outlet2.example/2025/03/story-2",
        title=f"fine ]]> \x1f title {'Ü' * 120}",
        source_id="outlet2",
        source_name="Outlet 2",
        published=NOW - timedelta(hours=2),
        category="Local",
    )
    story = Story(
        id="../../etc/passwd",
        article_ids=(bad.id, good.id),
        title="<script>alert(1)</script>",
        first_seen=NOW - timedelta(hours=2),
        updated=NOW - timedelta(hours=1),
        category=f"<i>cat</i>]]>{'C' * 80}",
    )
    summary = Summary(
        story_id=story.id,
        headline="<script>alert(1)</script>\x00",
        sentences=(SummarySentence(NASTY, (bad.id, good.id)),),
        method="llm",
        items=SummaryItems(  # every kind of item, each hostile
            talking_points=(SummaryItem(NASTY, (bad.id, good.id)),),
            perspectives=(SummaryItem(NASTY, (good.id,), who="<b onclick=alert(1)>Who</b>"),),
            timeline=(SummaryItem(NASTY, (bad.id,), when="<i>2025</i>\x00]]>"),),
            why_it_matters=SummaryItem(NASTY, (good.id,)),
        ),
    )
    hostile = Settings(title="Site ]]> \x00 <script>", site_url="https://news.example.org/")
    return build_site([story], {story.id: summary}, {bad.id: bad, good.id: good}, hostile, NOW)


LOCAL_OR_HTTP = re.compile(
    r"https?://|\.\./|stories/|category/[a-z0-9-]+/|day/|images/[0-9a-f]+\.webp$"
    r"|[a-z0-9-]+\.(html|xml|json|css|opml|svg)$"
)


def assert_inert_html(html: str | bytes) -> None:
    """No script element, no event handler, no link that is not http(s) or the site's own."""
    doc = lxml.html.fromstring(html)
    assert not doc.xpath("//script"), "a live <script> element"
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        assert not [a for a in element.attrib if a.lower().startswith("on")], element.tag
        for attr in ("href", "src"):
            value = element.get(attr)
            if value is not None:
                assert LOCAL_OR_HTTP.match(value), value
