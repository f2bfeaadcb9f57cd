"""Story -> cited summary: the LLM when configured, else (or on any failure) an extractive one.

Every sentence cites the member articles that support it. Model output is treated as untrusted
text: validated against a schema, stripped of markup and links, its citation numbers mapped to
article ids; sentences whose numbers, names, quotes or words their cited articles do not hold
are dropped (checks.grounding_failure); an answer that fails a quality gate (sentence count,
sources cited, copied sentences, headline) is asked for once more, naming the failure, then
the story falls back to the extractive summary with the reason in ``Summary.note``."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aggregator.errors import (
    LLMBadOutput,
    LLMBudgetExceeded,
    LLMCircuitOpen,
    LLMDailyBudgetExceeded,
    LLMError,
    LLMRequestRejected,
    LLMUnavailable,
)
from aggregator.records import Article, Story, Summary, SummaryItem, SummaryItems, SummarySentence
from aggregator.settings import LLMSettings
from aggregator.summarise.checks import (
    ITEM_LIMITS,
    MIN_HEADLINE_WORDS,
    Failure,
    ModelAnswer,
    answer_items,
    date_failure,
    describe_drops,
    first_error,
    grounding_failure,
    headline_failure,
    plain_text,
    sentence_copy_failure,
    sentence_count_failure,
    source_coverage_failure,
)
from aggregator.summarise.extractive import (
    EXTRACTIVE_MODEL,
    EXTRACTIVE_VERSION,
    extractive_summary,
    story_members,
)
from aggregator.summarise.llm import LLMClient, LLMUsage
from aggregator.summarise.prompt import (
    ANSWER_NAME,
    answer_schema,
    prompt_articles,
    prompt_version,
    system_prompt,
    user_message,
)

log = logging.getLogger(__name__)
MAX_OUTPUT_RETRIES = 1  # re-asks after an invalid answer, before falling back
# Fallback reasons the client already logged once for the run: each story is logged at INFO.
QUIET_REASONS = frozenset({"circuit_open", "daily_budget"})


# --- reuse ------------------------------------------------------------------------------------


def summary_input_hash(
    story: Story, articles: Sequence[Article], prompt_version: str, model: str
) -> str:
    """Hash of what a summary is written from: members, their content, prompt and model."""
    by_id = {a.id: a for a in articles}
    members = []
    for article_id in story.article_ids:
        article = by_id.get(article_id)
        content = f"{article.title}\n{article.text}" if article else ""
        members.append([article_id, hashlib.sha256(content.encode()).hexdigest()[:16]])
    payload = json.dumps([members, prompt_version, model], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def needs_summary(existing: Summary | None, input_hash: str) -> bool:
    """True when there is no summary yet or it was written from different input."""
    return existing is None or existing.input_hash != input_hash


# --- the summariser ---------------------------------------------------------------------------


class Summariser:
    """Writes one summary per story: LLM when configured, extractive otherwise or on failure."""

    def __init__(
        self,
        settings: LLMSettings,
        client: LLMClient | None = None,
        language: str = "en",
        timezone: str = "UTC",
    ) -> None:
        self.settings = settings
        self.language = language or "en"
        if client is None and settings.configured:
            client = LLMClient(settings, timezone=timezone)
        self.client = client if settings.configured else None
        self._usage = LLMUsage()  # the ledger when no client exists

    @property
    def usage(self) -> LLMUsage:
        """Calls, tokens and fallbacks of this run (the client's ledger when there is one)."""
        return self.client.usage if self.client is not None else self._usage

    @property
    def breaker_open(self) -> bool:
        """True once the client's circuit breaker has stopped LLM calls for this run."""
        return self.client is not None and self.client.breaker_open

    def input_hash(self, story: Story, articles: Sequence[Article]) -> str:
        """The hash a summary written now would carry (compare with ``needs_summary``)."""
        if self.client is None:
            return summary_input_hash(story, articles, EXTRACTIVE_VERSION, EXTRACTIVE_MODEL)
        version = f"{prompt_version()}:{self.language}"
        return summary_input_hash(story, articles, version, self.settings.model)

    def summarise(self, story: Story, articles: Sequence[Article]) -> Summary:
        """A summary of the story; never raises for LLM trouble (it falls back and says why).

        Threads may summarise different stories at once (llm.concurrency): the ledger is
        changed under its lock, the client is thread-safe, the rest is per call."""
        now = datetime.now(UTC)
        members = story_members(story, articles)
        if self.client is None or not members:
            return self._extractive(story, articles, now, note="")
        try:
            summary = self._llm_summary(self.client, story, members)
        except LLMError as exc:
            reason = fallback_reason(exc)
            with self.usage.lock:
                self.usage.fallbacks += 1
                self.usage.fallback_reasons[reason] += 1
            note = self.client.redact(f"LLM fallback: {exc} ({reason})")
            # the breaker and the daily budget said so once already; each story after is routine
            level = logging.INFO if reason in QUIET_REASONS else logging.WARNING
            log.log(level, "story %s: %s", story.id, note, extra={"story_id": story.id})
            fallback = self._extractive(story, articles, now, note=note)
            if isinstance(exc, LLMBadOutput):
                # The model answered this very input twice (the second time told what was
                # wrong) and neither answer could be published: asking again next run would
                # spend the same calls on the same answers. It is asked again once the story,
                # the prompt or the model changes. Outages and budgets are retried next run.
                return replace(fallback, input_hash=self.input_hash(story, articles))
            return fallback
        return replace(summary, input_hash=self.input_hash(story, articles), created=now)

    def _extractive(
        self, story: Story, articles: Sequence[Article], now: datetime, note: str
    ) -> Summary:
        # The hash names what wrote it, so a fallback after an outage is retried with the LLM
        # next run.
        input_hash = summary_input_hash(story, articles, EXTRACTIVE_VERSION, EXTRACTIVE_MODEL)
        summary = extractive_summary(story, articles, self.language)
        return replace(summary, input_hash=input_hash, created=now, note=note)

    def _llm_summary(self, client: LLMClient, story: Story, members: list[Article]) -> Summary:
        """Ask, check, re-ask once naming the failure; ``LLMError`` when nothing usable."""
        numbered = prompt_articles(members)
        system = system_prompt(self.language)
        user = user_message(
            numbered,
            self.settings.max_input_chars,
            self.language,
            self.settings.max_input_tokens,
        )
        schema = answer_schema(len(numbered), len({a.source_id for a in numbered}))
        failure: Failure | None = None
        for _attempt in range(1 + MAX_OUTPUT_RETRIES):
            message = user
            if failure is not None:
                message += (
                    f"\n\nYour previous answer was rejected: {failure.detail}. "
                    "Answer again with only the JSON object described above."
                )
            try:
                raw = client.chat_json(system, message, schema, ANSWER_NAME)
                return self._accept(story, raw, numbered, members)
            except AnswerRejected as exc:
                failure = Failure(exc.reason, str(exc))
            except LLMBadOutput as exc:
                failure = Failure("bad_output", str(exc))
            self.usage.count("rejected", failure.reason)
            log.info(
                "story %s: LLM answer rejected (%s): %s",
                story.id,
                *failure_parts(failure),
                extra={"story_id": story.id},
            )
        assert failure is not None
        raise AnswerRejected(
            Failure(
                failure.reason,
                f"no valid answer after {1 + MAX_OUTPUT_RETRIES} tries; {failure.detail}",
            )
        )

    def _accept(
        self,
        story: Story,
        raw: dict[str, Any],
        numbered: Sequence[Article],
        members: Sequence[Article],
    ) -> Summary:
        """The checked summary, or ``AnswerRejected`` naming the first failed gate."""
        try:
            answer = ModelAnswer.model_validate(raw)
        except ValidationError as exc:
            raise AnswerRejected(Failure("bad_shape", first_error(exc))) from None
        for item in answer.sentences:
            bad = [n for n in item.citations if not 1 <= n <= len(numbered)]
            if bad:
                raise AnswerRejected(
                    Failure(
                        "bad_citation", f"citation {bad[0]} names no article (1 to {len(numbered)})"
                    )
                )
        headline = plain_text(answer.headline)
        _reject(headline_failure(headline))
        written = [
            (text, [numbered[n - 1] for n in dict.fromkeys(item.citations)])
            for item in answer.sentences
            if (text := plain_text(item.text))  # empty: it was markup or links only
        ]
        # A sentence copied from an article is dropped like an ungrounded one: the rest of the
        # answer may still be a summary. When too few are left, the retry names the copy.
        copied: Failure | None = None
        sentences: list[SummarySentence] = []
        cited_sources: set[str] = set()
        dropped: Counter[str] = Counter()
        for index, (text, cited) in enumerate(written, 1):
            failure = sentence_copy_failure(index, text, numbered)
            copied = copied or failure
            failure = failure or grounding_failure(text, cited, self.language)
            if failure is not None:
                dropped[failure.reason] += 1
                log.info(
                    "story %s: sentence dropped (%s): %s",
                    story.id,
                    *failure_parts(failure),
                    extra={"story_id": story.id},
                )
                continue
            sentences.append(SummarySentence(text, tuple(a.id for a in cited)))
            cited_sources.update(a.source_id for a in cited)
        with self.usage.lock:
            self.usage.dropped.update(dropped)
        sources = len({a.source_id for a in numbered})
        too_few = sentence_count_failure(len(sentences), sources, describe_drops(dropped))
        if too_few is not None and copied is not None and too_few.reason == "too_few_sentences":
            too_few = Failure(copied.reason, f"{copied.detail}; {too_few.detail}")
        _reject(too_few)
        _reject(source_coverage_failure(cited_sources, sources))
        notes = []
        if dropped:
            notes.append(f"dropped {dropped.total()} sentence(s): {describe_drops(dropped)}")
        failure = grounding_failure(headline, numbered, self.language, MIN_HEADLINE_WORDS)
        if failure is not None:
            self.usage.count("dropped", f"headline_{failure.reason}")
            headline = extractive_summary(story, members, self.language).headline
            notes.append(f"headline replaced: {failure.detail}")
        items, dropped_items = self._items(story, raw, numbered)
        if dropped_items:
            with self.usage.lock:
                self.usage.dropped.update({f"item_{r}": n for r, n in dropped_items.items()})
            notes.append(
                f"dropped {dropped_items.total()} item(s): {describe_drops(dropped_items)}"
            )
        return Summary(
            story_id=story.id,
            headline=headline,
            sentences=tuple(sentences),
            method="llm",
            model=self.settings.model,
            note="; ".join(notes),
            items=items,
        )

    def _items(
        self, story: Story, raw: dict[str, Any], numbered: Sequence[Article]
    ) -> tuple[SummaryItems, Counter[str]]:
        """The answer's talking points, perspectives, timeline and why-it-matters line that
        cite existing articles and are grounded in them; the rest dropped and counted."""
        dropped: Counter[str] = Counter()
        kept: dict[str, list[SummaryItem]] = {}
        for kind, limit in ITEM_LIMITS.items():
            candidates, malformed = answer_items(raw, kind)
            dropped["bad_shape"] += malformed
            kept[kind] = []
            for candidate in candidates:
                text, who = plain_text(candidate.text), plain_text(candidate.who)
                when = plain_text(candidate.date) if kind == "timeline" else ""
                if not text or len(kept[kind]) >= limit:
                    continue  # an empty why_it_matters is none
                failure = self._item_failure(kind, text, who, when, candidate.citations, numbered)
                if failure is not None:
                    dropped[failure.reason] += 1
                    log.info(
                        "story %s: %s item dropped (%s): %s",
                        story.id,
                        kind,
                        *failure_parts(failure),
                        extra={"story_id": story.id},
                    )
                    continue
                cited = tuple(numbered[n - 1].id for n in dict.fromkeys(candidate.citations))
                kept[kind].append(SummaryItem(text, cited, who=who, when=when))
        why = kept["why_it_matters"]
        items = SummaryItems(
            talking_points=tuple(kept["talking_points"]),
            perspectives=tuple(kept["perspectives"]),
            timeline=tuple(kept["timeline"]),
            why_it_matters=why[0] if why else None,
        )
        return items, +dropped

    def _item_failure(
        self,
        kind: str,
        text: str,
        who: str,
        when: str,
        citations: Sequence[int],
        numbered: Sequence[Article],
    ) -> Failure | None:
        if not citations:
            return Failure("no_citation", "an item must cite the articles that report it")
        bad = [n for n in citations if not 1 <= n <= len(numbered)]
        if bad:
            return Failure("bad_citation", f"citation {bad[0]} names no article")
        cited = [numbered[n - 1] for n in dict.fromkeys(citations)]
        if kind == "perspectives":
            if not who:
                return Failure("too_few_words", "a perspective needs who holds it")
            text = f"{who}: {text}"  # the name is checked like any other
        failure = grounding_failure(text, cited, self.language)
        if failure is None and kind == "timeline":
            failure = date_failure(when, cited)
        return failure


class AnswerRejected(LLMBadOutput):
    """A model answer that failed a quality gate or had too little left after grounding."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.reason = failure.reason  # Failure.reason: counted in the run report


def _reject(failure: Failure | None) -> None:
    if failure is not None:
        raise AnswerRejected(failure)


def failure_parts(failure: Failure) -> tuple[str, str]:
    return failure.reason, failure.detail


def fallback_reason(exc: LLMError) -> str:
    """The run report's name for why a story fell back to the extractive summary."""
    if isinstance(exc, AnswerRejected):
        return exc.reason
    if isinstance(exc, LLMCircuitOpen):
        return "circuit_open"
    kinds: list[tuple[type[LLMError], str]] = [
        (LLMDailyBudgetExceeded, "daily_budget"),
        (LLMBudgetExceeded, "budget"),
        (LLMUnavailable, "unavailable"),
        (LLMRequestRejected, "refused"),
        (LLMBadOutput, "bad_output"),
    ]
    return next((name for kind, name in kinds if isinstance(exc, kind)), "error")
