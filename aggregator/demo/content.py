"""The demo's content: fictional outlets and the stories their articles tell, as data.

One YAML file per outlet in ``data/outlets/``, ``data/stories.yaml`` for the ground truth of which
articles tell the same story, ``data/ui.yaml`` for each language's interface words. Times are
"hours before now", so the demo always shows the last 24 hours, whenever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

CONTENT_DIR = "data"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoArticle(_Record):
    """One fictional article, as stored in an outlet's YAML file."""

    slug: str = Field(pattern=r"^[a-z0-9-]+$")  # last part of the page path
    story: str  # key in stories.yaml: which story this article tells (clustering ground truth)
    section: str  # path segment and <category>, e.g. "politics"
    hours_ago: float = Field(ge=0)  # published this many hours before the demo's `now`
    title: str  # plain text
    teaser: str  # one sentence: the feed description and og:description
    body: str  # plain text, paragraphs separated by blank lines
    author: str = ""
    updated_hours_ago: float | None = None  # a later correction or update, if any
    dated_in_feed: bool = True  # False: the feed item has no pubDate (a rough edge)
    link_query: str = ""  # appended to the feed link, e.g. utm_* tracking (a rough edge)

    @field_validator("body")
    @classmethod
    def _three_paragraphs(cls, value: str) -> str:
        if len(_split_paragraphs(value)) < 3:
            raise ValueError("an article needs at least three paragraphs")
        return value

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return _split_paragraphs(self.body)


def _split_paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


class DemoOutlet(_Record):
    """One fictional news outlet and its articles."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")  # also the first path segment of its URLs
    name: str
    tagline: str
    language: str  # BCP 47, e.g. "en", "de"
    locale: str  # og:locale, e.g. "en_GB"
    category: str  # the Source category in the demo config
    weight: float = 1.0  # the Source weight in the demo config
    feed_format: Literal["rss", "atom"]
    feed_text: Literal["full", "teaser"]  # teaser: the crawler must extract the article page
    numeric_entities: bool = False  # titles written with &#8217;-style references in the feed
    cdata: bool = False  # RSS content:encoded wrapped in CDATA instead of escaped
    article_path: str  # path after /<id>, with {section} and {slug}
    accent: str = "#333333"  # the site's colour, so outlets look different
    sections: tuple[str, ...]  # the navigation bar
    articles: tuple[DemoArticle, ...]

    @property
    def full_text(self) -> bool:
        """The feed carries only a teaser, so the crawler must fetch and extract every page."""
        return self.feed_text == "teaser"

    @property
    def feed_path(self) -> str:
        return f"/{self.id}/{'feed.xml' if self.feed_format == 'rss' else 'atom.xml'}"

    def article_path_for(self, article: DemoArticle) -> str:
        return f"/{self.id}" + self.article_path.format(section=article.section, slug=article.slug)


class DemoStory(_Record):
    """What one story is about: the ground truth the demo articles are grouped by."""

    key: str
    category: str
    about: str  # one line for humans reading the content files


@dataclass(frozen=True)
class DemoContent:
    """All the demo's outlets and stories."""

    outlets: tuple[DemoOutlet, ...]
    stories: tuple[DemoStory, ...]
    ui: dict[str, dict[str, Any]]  # per language: interface words, month names

    @property
    def articles(self) -> tuple[tuple[DemoOutlet, DemoArticle], ...]:
        return tuple((o, a) for o in self.outlets for a in o.articles)


def content_root() -> Traversable:
    return files("aggregator.demo").joinpath(CONTENT_DIR)


def _load_yaml(node: Traversable) -> Any:
    try:
        return YAML(typ="safe").load(node.read_text(encoding="utf-8"))
    except YAMLError as exc:  # name the file: the content is edited by hand
        raise ValueError(f"demo content {node.name}: {exc}") from exc


def _load_outlet(node: Traversable) -> DemoOutlet:
    try:
        return DemoOutlet.model_validate(_load_yaml(node))
    except ValidationError as exc:
        raise ValueError(f"demo content {node.name}: {exc}") from exc


@cache
def load_demo_content() -> DemoContent:
    """Read and validate every outlet file, stories.yaml and ui.yaml (cached)."""
    root = content_root()
    outlet_files = sorted(
        (n for n in root.joinpath("outlets").iterdir() if n.name.endswith(".yaml")),
        key=lambda n: n.name,
    )
    outlets = tuple(_load_outlet(n) for n in outlet_files)
    stories = tuple(DemoStory.model_validate(s) for s in _load_yaml(root / "stories.yaml"))
    ui = _load_yaml(root / "ui.yaml")
    _check_references(outlets, stories, ui)
    return DemoContent(outlets=outlets, stories=stories, ui=ui)


def _check_references(
    outlets: tuple[DemoOutlet, ...], stories: tuple[DemoStory, ...], ui: dict[str, Any]
) -> None:
    """Fail loudly on a typo in the content files rather than serve a broken demo."""
    keys = {s.key for s in stories}
    paths: set[str] = set()
    for outlet in outlets:
        if outlet.language not in ui:
            raise ValueError(f"outlet {outlet.id}: no ui.yaml entry for {outlet.language!r}")
        for article in outlet.articles:
            if article.story not in keys:
                raise ValueError(f"{outlet.id}/{article.slug}: unknown story {article.story!r}")
            path = outlet.article_path_for(article)
            if path in paths:
                raise ValueError(f"{outlet.id}/{article.slug}: duplicate path {path}")
            paths.add(path)
