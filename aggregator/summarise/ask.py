"""Ask the news: a question about one story, answered from that story's articles only.

Every sentence of an answer cites the story's articles it comes from, and says plainly when the
articles do not answer the question. With an LLM configured the model answers (the articles
fenced as data; its answer checked like a summary: plain text only, citations that exist,
every sentence grounded in the articles it cites, the rest dropped); without one, or when the
LLM fails, the best-matching sentences of the articles by term overlap. ``ask`` is the library
call the CLI (and later the preview server) makes.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.errors import LLMBadOutput, LLMError, UserError
from aggregator.records import Article
from aggregator.resources import shipped_dir
from aggregator.settings import Settings
from aggregator.summarise.checks import (
    AnswerSentence,
    content_words,
    grounding_failure,
    plain_text,
)
from aggregator.summarise.extractive import DATELINE
from aggregator.summarise.ledger import count_earlier_runs
from aggregator.summarise.prompt import fenced, prompt_articles, share_budget
from aggregator.text import clean_text, one_line, shorten, split_sentences

if TYPE_CHECKING:
    from aggregator.store.storage import Storage
    from aggregator.summarise.llm import LLMClient

log = logging.getLogger(__name__)

NOT_ANSWERED = "The articles do not answer this."
ASK_PROMPT = shipped_dir("prompts") / "ask.md"
QUESTION_MAX = 500  # characters of a question sent to the model
MAX_ANSWER_SENTENCES = 4
EXTRACTIVE_SENTENCES = 3  # best-matching sentences the extractive answer quotes at most
# Share of the question's (story-weighted) content words a sentence must contain to answer it:
# below it, a sentence shares only the story's own topic words with the question.
MIN_MATCH = 0.5
SENTENCES_PER_ARTICLE = 40  # of each article's text searched by the extractive answer
TITLE_MAX = 300


class UnknownStory(UserError):
    """No story has the id asked about (exit code 2)."""


@dataclass(frozen=True)
class AnswerSource:
    """One of the story's articles, numbered as the answer cites it."""

    number: int  # 1, 2, ...: what "[n]" refers to
    article_id: str
    outlet: str  # the source's name
    title: str
    url: str


@dataclass(frozen=True)
class AnswerLine:
    """One sentence of an answer and the numbers of the sources it cites."""

    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    """The answer to a question about a story: cited sentences, or none (not answered)."""

    story_id: str
    question: str
    sentences: tuple[AnswerLine, ...]  # empty: the articles do not answer it
    sources: tuple[AnswerSource, ...]  # the story's articles, numbered (what citations name)
    method: Literal["llm", "extractive"]  # who answered
    model: str = ""  # the LLM's model; "" for the extractive answer
    note: str = ""  # why the LLM did not answer, sentences dropped by the checks

    @property
    def answered(self) -> bool:
        return bool(self.sentences)

    @property
    def cited(self) -> tuple[AnswerSource, ...]:
        """The sources the sentences cite, in number order."""
        numbers = {n for line in self.sentences for n in line.citations}
        return tuple(s for s in self.sources if s.number in numbers)

    def text(self) -> str:
        """The answer as prose with "[n]" marks, or the plain not-answered sentence."""
        if not self.sentences:
            return NOT_ANSWERED
        return " ".join(
            f"{line.text} " + "".join(f"[{n}]" for n in line.citations) for line in self.sentences
        )

    def json(self) -> dict[str, Any]:
        return {
            "story_id": self.story_id,
            "question": self.question,
            "answered": self.answered,
            "answer": self.text(),
            "sentences": [{"text": s.text, "citations": list(s.citations)} for s in self.sentences],
            "sources": [vars(s) for s in self.cited],
            "method": self.method,
            "model": self.model,
            "note": self.note,
        }


def ask(
    storage: Storage,
    story_id: str,
    question: str,
    settings: Settings,
    *,
    client: LLMClient | None = None,
) -> Answer:
    """Answer ``question`` from the articles of story ``story_id`` (a merged story's survivor).

    ``UnknownStory`` for an id no story has, ``UserError`` for an empty question. With an LLM
    configured (or ``client`` given) it answers, within the daily budget, its usage written to
    the ledger under the purpose "ask"; any LLM failure falls back to the extractive answer,
    with the reason in ``Answer.note``."""
    question = one_line(question)
    if not question:
        raise UserError('the question is empty: ask something, e.g. "Who is affected?"')
    story = storage.story(story_id.strip())
    if story is None:
        raise UnknownStory(
            f"no story has the id {story_id!r}: `aggregator export stories` lists the ids (a "
            "story page's file name, stories/<id>.html, is its id too)"
        )
    by_id = storage.articles_by_id(story.article_ids)
    members = prompt_articles([by_id[a] for a in story.article_ids if a in by_id])
    sources = tuple(
        AnswerSource(n, a.id, one_line(a.source_name), one_line(a.title), a.url)
        for n, a in enumerate(members, 1)
    )
    if not members:  # nothing to answer from: no model is asked
        return Answer(story.id, question, (), (), "extractive", "", "the story has no articles")
    llm = settings.llm
    if client is None and llm.configured:
        from aggregator.summarise.llm import LLMClient

        client = LLMClient(llm, timezone=settings.timezone)
    note = ""
    if client is not None:
        count_earlier_runs(client, storage)
        try:
            lines, note = llm_answer(client, question, members, settings.language)
            return Answer(story.id, question, lines, sources, "llm", client.model, note)
        except LLMError as exc:
            note = client.redact(f"LLM fallback: {exc}")
            log.warning("story %s: %s", story.id, note, extra={"story_id": story.id})
        finally:
            storage.save_llm_usage(client.usage_lines(llm.prices))
    lines = extractive_answer(question, members)
    return Answer(story.id, question, lines, sources, "extractive", "", note)


# --- the LLM's answer ---------------------------------------------------------------------------


class ModelAnswer(BaseModel):
    """The JSON the ask prompt asks for; extra keys ignored."""

    model_config = ConfigDict(extra="ignore")
    answered: bool
    sentences: list[AnswerSentence] = Field(default_factory=list, max_length=8)


@cache
def _system_template() -> str:
    return ASK_PROMPT.read_text(encoding="utf-8")


def system_prompt(language: str) -> str:
    return _system_template().replace("{{language}}", language or "en")


def user_message(question: str, articles: Sequence[Article], max_chars: int) -> str:
    """The numbered articles fenced as data (a marker they cannot forge), then the question."""
    texts = [clean_text(a.text) for a in articles]
    budgets = share_budget([len(t) for t in texts], max_chars)
    blocks = []
    for number, (article, text, budget) in enumerate(zip(articles, texts, budgets, strict=True), 1):
        published = article.published.date().isoformat() if article.published else "unknown"
        blocks += [
            f"[{number}] Title: {one_line(article.title)[:TITLE_MAX]}",
            f"Source: {one_line(article.source_name)[:TITLE_MAX]}",
            f"Published: {published}",
            "Text:",
            shorten(text, budget) or "(no text; only the title is known)",
            "",
        ]
    return "\n".join(
        [
            f"Answer the question below from these {len(articles)} numbered source article(s).",
            *fenced(blocks),
            "",
            f"Question: {shorten(question, QUESTION_MAX)}",
            "",
            "Answer with the JSON object only. Cite articles by their numbers, 1 to "
            f'{len(articles)}. If the articles do not answer the question, answer {{"answered": '
            'false, "sentences": []}.',
        ]
    )


def llm_answer(
    client: LLMClient, question: str, members: Sequence[Article], language: str
) -> tuple[tuple[AnswerLine, ...], str]:
    """The model's checked answer and a note of what the checks dropped; ``LLMError`` when
    the model gave no usable answer (twice: one corrective retry)."""
    system = system_prompt(language)
    user = user_message(question, members, client.settings.max_input_chars)
    problem = ""
    for _attempt in range(2):
        message = user
        if problem:
            message += f"\n\nYour previous answer was rejected: {problem}. Answer again with "
            message += "only the JSON object described above."
        try:
            answer = ModelAnswer.model_validate(client.chat_json(system, message, purpose="ask"))
        except LLMBadOutput as exc:  # prose, a truncated or a refused answer
            problem = str(exc)
            continue
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "answer"
            problem = f"wrong shape at {where}: {error['msg']}"
            continue
        return checked(answer, members, language)
    raise LLMBadOutput(f"no usable answer after 2 tries; {problem}")


def checked(
    answer: ModelAnswer, members: Sequence[Article], language: str
) -> tuple[tuple[AnswerLine, ...], str]:
    """The sentences that survive the checks (plain text, existing citations, grounded in
    the articles they cite), and a note counting what was dropped."""
    if not answer.answered:
        return (), ""
    kept: list[AnswerLine] = []
    dropped: Counter[str] = Counter()
    for item in answer.sentences[:MAX_ANSWER_SENTENCES]:
        text = one_line(plain_text(item.text))  # no control characters reach a terminal
        numbers = tuple(dict.fromkeys(n for n in item.citations if 1 <= n <= len(members)))
        if not text or not numbers:
            dropped["bad_citation" if text else "empty"] += 1
            continue
        failure = grounding_failure(text, [members[n - 1] for n in numbers], language)
        if failure is not None:
            dropped[failure.reason] += 1
            continue
        kept.append(AnswerLine(text, numbers))
    dropped_count = sum(dropped.values())
    extra = len(answer.sentences) - MAX_ANSWER_SENTENCES
    note = ""
    if dropped_count:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(dropped.items()))
        note = f"dropped {dropped_count} sentence(s) the articles do not support: {reasons}"
    if extra > 0:
        note = "; ".join(filter(None, [note, f"{extra} sentence(s) past {MAX_ANSWER_SENTENCES}"]))
    return tuple(kept), note


# --- the extractive answer ----------------------------------------------------------------------

_SUFFIXES = ("ing", "ed", "es", "s", "ly")
_WHITESPACE = re.compile(r"\s+")


def _stem(word: str) -> str:
    """A crude stem, so "injures" meets "injured" and "penalties" "penalty"."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def extractive_answer(question: str, members: Sequence[Article]) -> tuple[AnswerLine, ...]:
    """The articles' sentences that best match the question by term overlap, each cited;
    none when no sentence holds at least ``MIN_MATCH`` of the question's weighted terms.

    A term's weight is its rarity among the story's sentences (idf): a question always shares
    the story's topic words with every sentence, so those count little, and a term no article
    uses counts most (the articles cannot answer what they never mention)."""
    asked = _terms(question)
    if not asked:
        return ()
    candidates: list[tuple[int, int, str, set[str]]] = []  # article number, position, text
    for number, article in enumerate(members, 1):
        sentences = split_sentences(article.text)[:SENTENCES_PER_ARTICLE] or [article.title]
        for position, sentence in enumerate(sentences):
            if position == 0:
                sentence = DATELINE.sub("", sentence, count=1)  # "LONDON (Reuters) - "
            text = _WHITESPACE.sub(" ", sentence).strip()
            if text:
                candidates.append((number, position, text, _terms(text)))
    if not candidates:
        return ()
    frequency = Counter(t for *_, terms in candidates for t in terms & asked)
    total = len(candidates)
    weight = {t: math.log(1 + total / (1 + frequency[t])) for t in asked}
    whole = sum(weight.values())
    scored = []
    for number, position, text, terms in candidates:
        share = sum(weight[t] for t in terms & asked) / whole
        if share >= MIN_MATCH:
            scored.append((-share, number, position, text, terms))
    scored.sort(key=lambda c: c[:3])
    chosen: list[AnswerLine] = []
    seen: list[set[str]] = []
    for _, number, _position, text, terms in scored:
        if any(len(terms & other) >= 0.7 * min(len(terms), len(other)) for other in seen):
            continue  # the same fact in another outlet's words
        chosen.append(AnswerLine(text, (number,)))
        seen.append(terms)
        if len(chosen) >= EXTRACTIVE_SENTENCES:
            break
    return tuple(chosen)
