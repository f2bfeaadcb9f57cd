"""Checks on model output: plain text only, numbers its sources support, the answer's shape."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.records import Article

# --- checking model output --------------------------------------------------------------------

_SCRIPT_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z!?/][^<>]*>?")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(
    r"(?:https?|ftp)://\S+|www\.\S+|(?:javascript|vbscript|data|file):\S+", re.IGNORECASE
)
_CITE_MARK = re.compile(r"\[\s*\d+(?:\s*[,;–-]\s*\d+)*\s*\]")  # "[1]" or "[1, 2]" in the text
_MD_EMPHASIS = re.compile(r"\*\*|__|`+|^\s*(?:#+|>|[-*•])\s+", re.MULTILINE)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"[.,](?=\d{3}(?!\d))")


def plain_text(text: str) -> str:
    """Model text with markup, links, URLs and inline citation marks removed."""
    text = html.unescape(text)  # "&lt;b&gt;" must not survive as markup either
    text = _SCRIPT_BLOCK.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _CITE_MARK.sub(" ", text)
    text = _MD_EMPHASIS.sub(" ", text)
    text = re.sub(r"\(\s*\)", " ", text)  # what is left of "(https://...)"
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text).strip()


def numbers(text: str) -> set[str]:
    """Numbers in text, normalised: "1,200" and "1.200" are 1200, "2,5" is 2.5."""
    return {_THOUSANDS.sub("", n).replace(",", ".") for n in _NUMBER.findall(text)}


def unsupported_numbers(sentence: str, sources: Sequence[Article]) -> set[str]:
    """Numbers in the sentence that none of the sources' titles or texts contain."""
    known: set[str] = set()
    for article in sources:
        known |= numbers(f"{article.title}\n{article.text}")
    return numbers(sentence) - known


class AnswerSentence(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=1200)
    citations: list[int] = Field(min_length=1, max_length=20)


class ModelAnswer(BaseModel):
    """The JSON the prompt asks for; extra keys are ignored, missing ones are an error."""

    model_config = ConfigDict(extra="ignore")
    headline: str = Field(min_length=1, max_length=1000)
    sentences: list[AnswerSentence] = Field(min_length=1, max_length=6)


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    return f"wrong shape at {where}: {error['msg']}"
