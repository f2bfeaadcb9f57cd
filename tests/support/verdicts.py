"""Stub adjudicators for clustering's LLM questions (cluster.adjudicate), as OpenAIStub scripts.

``oracle`` answers from gold labels (a perfect adjudicator: the upper bound of what an LLM can
add), ``always(True)`` says "same event" to everything (the lower bound), and ``demo_window``
is the demo's content as the pipeline's 24 h window sees it, with each article's story.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.demo.content import load_demo_content
from aggregator.records import Article
from aggregator.text import one_line
from tests.support.openai_stub import Reply, reply_json

_LINE = re.compile(r"^\d+\. (?P<line>.*\))$")


def groups(request: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The article lines of group A and group B in a question's user message: each article's
    "title (source)"."""
    text = request["messages"][-1]["content"]
    first, _, rest = text.partition("Group B:")
    titles: list[list[str]] = [[], []]
    for index, part in enumerate((first, rest)):
        for line in part.splitlines():
            match = _LINE.match(line.strip())
            if match:
                titles[index].append(match.group("line"))
    return titles[0], titles[1]


def shown(article: Article) -> str:
    """How an article's line reads in a question (see cluster.adjudicate)."""
    return f"{one_line(article.title)} ({one_line(article.source_name)})"


def oracle(label_of_line: Mapping[str, str]) -> Callable[[dict[str, Any]], Reply]:
    """Same event when the groups' most common gold labels agree; ``label_of_line`` maps
    ``shown(article)`` to the article's gold label."""

    def answer(request: dict[str, Any]) -> Reply:
        left, right = groups(request)

        def label(lines: list[str]) -> str:
            counts = Counter(label_of_line.get(t, f"unknown:{t}") for t in lines)
            return min(counts, key=lambda k: (-counts[k], k)) if counts else "none"

        return reply_json({"same_event": label(left) == label(right)})

    return answer


def always(same: bool) -> Callable[[dict[str, Any]], Reply]:
    return lambda _request: reply_json({"same_event": same})


DEMO_NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def demo_window(hours: float = 24.0) -> tuple[list[Article], dict[str, str]]:
    """The demo's articles published within ``hours`` (the pipeline's default window: 38 of
    41), built from its content files as the crawler stores them, and each one's story."""
    articles: list[Article] = []
    story: dict[str, str] = {}
    for outlet, item in load_demo_content().articles:
        if item.hours_ago > hours:
            continue
        article = Article(
            id=f"{outlet.id}-{item.slug}",
            url=f"http://demo.test/{outlet.id}{outlet.article_path_for(item)}",
            title=item.title,
            source_id=outlet.id,
            source_name=outlet.name,
            text="\n\n".join(item.paragraphs),
            published=DEMO_NOW - timedelta(hours=item.hours_ago),
            language=outlet.language,
            category=item.section,
        )
        articles.append(article)
        story[article.id] = item.story
    return articles, story
