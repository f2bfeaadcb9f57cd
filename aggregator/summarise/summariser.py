"""Story -> cited summary: the LLM when configured, else (or on any failure) an extractive one.

Every sentence cites the member articles that support it. Model output is treated as untrusted
text: validated against a schema, stripped of markup and links, its citation numbers mapped to
article ids, and sentences with numbers that none of their sources contain are dropped."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aggregator.errors import LLMBadOutput, LLMError
from aggregator.records import Article, Story, Summary, SummarySentence
from aggregator.settings import LLMSettings
from aggregator.summarise.checks import (
    ModelAnswer,
    first_error,
    plain_text,
    unsupported_numbers,
)
from aggregator.summarise.extractive import (
    EXTRACTIVE_MODEL,
    EXTRACTIVE_VERSION,
    HEADLINE_MAX,
    extractive_summary,
    story_members,
)
from aggregator.summarise.llm import LLMClient, LLMUsage
from aggregator.summarise.prompt import prompt_articles, prompt_version, system_prompt, user_message

log = logging.getLogger(__name__)
MAX_OUTPUT_RETRIES = 1  # re-asks after an invalid answer, before falling back


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
        self, settings: LLMSettings, client: LLMClient | None = None, language: str = "en"
    ) -> None:
        self.settings = settings
        self.language = language or "en"
        if client is None and settings.configured:
            client = LLMClient(settings)
        self.client = client if settings.configured else None
        self._usage = LLMUsage()  # the ledger when no client exists

    @property
    def usage(self) -> LLMUsage:
        """Calls, tokens and fallbacks of this run (the client's ledger when there is one)."""
        return self.client.usage if self.client is not None else self._usage

    def input_hash(self, story: Story, articles: Sequence[Article]) -> str:
        """The hash a summary written now would carry (compare with ``needs_summary``)."""
        if self.client is None:
            return summary_input_hash(story, articles, EXTRACTIVE_VERSION, EXTRACTIVE_MODEL)
        version = f"{prompt_version()}:{self.language}"
        return summary_input_hash(story, articles, version, self.settings.model)

    def summarise(self, story: Story, articles: Sequence[Article]) -> Summary:
        """A summary of the story; never raises for LLM trouble (it falls back and says why)."""
        now = datetime.now(UTC)
        if self.client is None:
            return self._extractive(story, articles, now, note="")
        try:
            summary = self._llm_summary(self.client, story, story_members(story, articles))
        except LLMError as exc:
            self.usage.fallbacks += 1
            note = self.client.redact(f"LLM fallback: {exc}")
            log.warning("story %s: %s", story.id, note, extra={"story_id": story.id})
            return self._extractive(story, articles, now, note=note)
        return replace(summary, input_hash=self.input_hash(story, articles), created=now)

    def _extractive(
        self, story: Story, articles: Sequence[Article], now: datetime, note: str
    ) -> Summary:
        # The hash names what really wrote it, so a fallback is retried with the LLM next run.
        input_hash = summary_input_hash(story, articles, EXTRACTIVE_VERSION, EXTRACTIVE_MODEL)
        summary = extractive_summary(story, articles, self.language)
        return replace(summary, input_hash=input_hash, created=now, note=note)

    def _llm_summary(self, client: LLMClient, story: Story, members: list[Article]) -> Summary:
        """Ask, validate, re-ask a bounded number of times; ``LLMError`` when nothing usable."""
        numbered = prompt_articles(members)
        system = system_prompt(self.language)
        user = user_message(numbered, self.settings.max_input_chars)
        problem = ""
        for _attempt in range(1 + MAX_OUTPUT_RETRIES):
            message = user
            if problem:
                message += (
                    f"\n\nYour previous answer was rejected ({problem}). "
                    "Answer again with only the JSON object described above."
                )
            try:
                return self._accept(story, client.chat_json(system, message), numbered, members)
            except LLMBadOutput as exc:
                problem = str(exc)
                log.info(
                    "story %s: invalid LLM answer: %s",
                    story.id,
                    problem,
                    extra={"story_id": story.id},
                )
        raise LLMBadOutput(f"no valid answer after {1 + MAX_OUTPUT_RETRIES} tries; {problem}")

    def _accept(
        self,
        story: Story,
        raw: dict[str, Any],
        numbered: Sequence[Article],
        members: Sequence[Article],
    ) -> Summary:
        """The validated summary, or ``LLMBadOutput`` naming the first problem."""
        try:
            answer = ModelAnswer.model_validate(raw)
        except ValidationError as exc:
            raise LLMBadOutput(first_error(exc)) from None
        headline = plain_text(answer.headline)
        if not headline or len(headline) > HEADLINE_MAX:
            raise LLMBadOutput(f"headline is empty or longer than {HEADLINE_MAX} characters")
        sentences, dropped = self._sentences(answer, numbered)
        if not sentences:
            raise LLMBadOutput("no sentence is plain text whose numbers its sources support")
        notes = []
        if dropped:
            notes.append(f"dropped {dropped} sentence(s) with numbers not in their sources")
        if unsupported_numbers(headline, members):
            headline = extractive_summary(story, members, self.language).headline
            notes.append("headline replaced: it had numbers not in the sources")
        return Summary(
            story_id=story.id,
            headline=headline,
            sentences=tuple(sentences),
            method="llm",
            model=self.settings.model,
            note="; ".join(notes),
        )

    @staticmethod
    def _sentences(
        answer: ModelAnswer, numbered: Sequence[Article]
    ) -> tuple[list[SummarySentence], int]:
        """Cleaned, cited sentences and how many were dropped for unsupported numbers."""
        out: list[SummarySentence] = []
        dropped = 0
        for item in answer.sentences:
            bad = [n for n in item.citations if not 1 <= n <= len(numbered)]
            if bad:
                raise LLMBadOutput(f"citation {bad[0]} names no article (1 to {len(numbered)})")
            cited = [numbered[n - 1] for n in dict.fromkeys(item.citations)]
            text = plain_text(item.text)
            if not text:
                continue  # it was markup or links only
            if unsupported_numbers(text, cited):
                dropped += 1
                continue
            out.append(SummarySentence(text, tuple(a.id for a in cited)))
        return out, dropped
