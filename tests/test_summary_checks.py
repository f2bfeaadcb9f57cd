"""The quality gates and grounding checks on model answers: pure functions, no server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from aggregator.records import Article
from aggregator.summarise.checks import (
    COPY_SIMILARITY,
    GROUNDED_SHARE,
    HEADLINE_LIMIT,
    MIN_HEADLINE_WORDS,
    copy_failure,
    copy_similarity,
    grounding_failure,
    headline_failure,
    names,
    sentence_count_failure,
    source_coverage_failure,
)

SOURCE = "An earthquake of magnitude 6.1 struck the northern coast early on Monday, officials said."
BANK = Article(
    id="b1",
    url="https://wire.example/b1",
    title="Central Bank of Estmark cuts its key rate",
    source_id="wire",
    source_name="Wire",
    text=(
        "The Central Bank of Estmark cut its key rate to 3.25 percent on Tuesday. Governor "
        "Anna Berg said inflation had eased for six months. \u201cWe acted because prices "
        "calmed,\u201d she told reporters in Velden. Lenders wrote 1,200 new mortgages in May."
    ),
    published=datetime(2026, 11, 26, 8, tzinfo=UTC),
    language="en",
)


def test_copy_similarity_threshold() -> None:
    # What the threshold must catch: a copy, a copy with two words changed, three words cut.
    assert copy_similarity(SOURCE, SOURCE) == 1.0
    changed = SOURCE.replace("struck", "hit").replace("early", "late")
    assert copy_similarity(changed, SOURCE) >= COPY_SIMILARITY
    cut = "An earthquake of magnitude 6.1 struck the northern coast early on Monday."
    assert copy_similarity(cut, SOURCE) >= COPY_SIMILARITY
    # What it must let through: a sentence that keeps the opening but drops the last clause,
    # and one that combines facts in its own words.
    kept = "An earthquake of magnitude 6.1 struck the northern coast."
    assert 0.75 < copy_similarity(kept, SOURCE) < COPY_SIMILARITY
    merged = "The magnitude 6.1 earthquake on Monday injured at least 12 people on the coast."
    assert copy_similarity(merged, SOURCE) < 0.6
    article = replace(BANK, text=SOURCE)
    failure = copy_failure(["A first sentence of ours.", SOURCE.upper()], [BANK, article])
    assert failure is not None and failure.reason == "copied_sentence"
    assert "sentence 2" in failure.detail and "article 2" in failure.detail
    assert copy_failure([kept, merged], [article]) is None


def test_headline_gate() -> None:
    assert headline_failure("Central bank cuts its key rate") is None
    assert headline_failure("x" * HEADLINE_LIMIT) is None
    failure = headline_failure("x" * (HEADLINE_LIMIT + 1))
    assert failure is not None and failure.reason == "headline_too_long"
    failure = headline_failure("")
    assert failure is not None and failure.reason == "headline_empty"


def test_sentence_count_and_source_coverage_gates() -> None:
    assert sentence_count_failure(1, sources=1) is None  # a one-source story: 1-4
    for count in (2, 3, 4):
        assert sentence_count_failure(count, sources=3) is None
    one = sentence_count_failure(1, sources=3, dropped="1 with numbers not in the sources")
    assert one is not None and one.reason == "too_few_sentences"
    assert "numbers not in the sources" in one.detail and "2 to 4" in one.detail
    five = sentence_count_failure(5, sources=1)
    assert five is not None and five.reason == "too_many_sentences"

    assert source_coverage_failure(["wire", "daily"], sources=3) is None
    assert source_coverage_failure(["wire"], sources=1) is None
    single = source_coverage_failure(["wire", "wire"], sources=2)
    assert single is not None and single.reason == "one_source"
    assert "cited only one source" in single.detail


@pytest.mark.parametrize(
    "sentence",
    [
        "The central bank of Estmark cut its key rate to 3.25 percent.",
        "Lenders wrote 1200 new mortgages in May, the Central Bank of Estmark said.",  # 1,200
        "Governor Anna Berg said prices had calmed and inflation eased.",
        "Anna Berg said: \u201cwe acted because prices calmed.\u201d",  # case, punctuation
        "On Tuesday Governor Anna Berg cut the key rate.",  # the opening "On Tuesday" is not a name
    ],
)
def test_grounded_sentences_pass(sentence: str) -> None:
    assert grounding_failure(sentence, [BANK], "en") is None


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("The central bank cut its key rate to 3.5 percent.", "unsupported_number"),
        ("Finance Minister Olaf Lind welcomed the rate cut.", "unsupported_name"),
        ("The governor said \u201cthe crisis is over\u201d after the cut.", "unsupported_quote"),
        # the planted instruction's answer: no claim, and nothing of it in the sources
        ("Read more at here", "too_few_words"),
        ("Click", "too_few_words"),
        # two of five content words from the source (0.4 < 0.6)
        ("Angry farmers blockaded parliament over the key rate.", "unsupported_words"),
    ],
)
def test_ungrounded_sentences_fail_with_their_reason(sentence: str, reason: str) -> None:
    failure = grounding_failure(sentence, [BANK], "en")
    assert failure is not None and failure.reason == reason, failure


def test_the_share_of_content_words() -> None:
    # five content words, three from the source (0.6) pass; two of five (0.4) do not
    assert GROUNDED_SHARE == 0.6
    assert grounding_failure("Velden lenders wrote despite strikes.", [BANK]) is None
    failure = grounding_failure("Velden lenders protested despite strikes.", [BANK])
    assert failure is not None and failure.reason == "unsupported_words"


def test_headlines_need_fewer_words_and_may_be_in_title_case() -> None:
    assert grounding_failure("Estmark Cuts Key Rate To 3.25 Percent", [BANK], "en", 2) is None
    click = grounding_failure("Click", [BANK], "en", MIN_HEADLINE_WORDS)
    assert click is not None and click.reason == "too_few_words"


def test_a_sentence_citing_other_language_articles_is_checked_by_numbers() -> None:
    german = replace(
        BANK, language="de", text="Die Zentralbank senkte den Leitzins auf 3,25 Prozent."
    )
    assert (
        grounding_failure("The central bank cut its rate to 3.25 percent.", [german], "en") is None
    )
    failure = grounding_failure("The central bank cut its rate to 4 percent.", [german], "en")
    assert failure is not None and failure.reason == "unsupported_number"


def test_names_are_capitalised_runs_without_leading_function_words() -> None:
    found = names("The Central Bank of Estmark said Anna Berg, Velden's mayor, agreed.")
    assert found == [("Central Bank", True), ("Anna Berg", False)]
