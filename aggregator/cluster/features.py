"""Article features: word TF-IDF of title, URL slug and lead, beside title character n-grams."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain
from urllib.parse import unquote, urlsplit

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.preprocessing import normalize

from aggregator.records import Article
from aggregator.settings import ClusterParams


def lead(text: str, words: int) -> str:
    """The first ``words`` words of a text."""
    return " ".join(text.split()[:words])


_URL_WORD = re.compile(r"[^\W\d_]{2,}")  # letters only: ids, dates and numbers say nothing


def url_words(url: str) -> str:
    """The words of the URL path's wordiest segment, its slug: "/business/fed-plosser-taper-
    20140310" -> "fed plosser taper". Section names ("business") would make every article of a
    desk alike; common words of slugs ("html", "story") weigh little through their IDF."""
    segments: list[list[str]] = [
        _URL_WORD.findall(part) for part in unquote(urlsplit(url).path).split("/")
    ]
    slug = max(segments[::-1], key=len)  # ties: the last segment
    return " ".join(slug)


def embedding_text(article: Article, params: ClusterParams = ClusterParams()) -> str:
    """What the sentence encoder reads: the title, then the start of the lead."""
    return f"{article.title}. {lead(article.text, params.embed_lead_words)}".strip(" .")


def article_vectors(
    articles: Sequence[Article], params: ClusterParams = ClusterParams()
) -> sp.csr_matrix:
    """L2-normalised sparse vectors: word TF-IDF (title + URL words and lead) beside title
    character n-grams.

    The same matrices as TfidfVectorizer(sublinear_tf=True, stop_words="english") over titles
    and leads, and TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3,
    params.ngram_max)) over the titles' content words (vocabularies in the same sorted order),
    built faster: all texts are tokenised in one pass, and a title's character n-grams are the
    sum of its words' n-grams, each distinct word cut into n-grams once.
    """
    n = len(articles)
    counts, vocabulary = word_counts(
        [a.title for a in articles]
        + [f"{url_words(a.url)} {lead(a.text, params.lead_words)}" for a in articles]
    )
    words = _word_block(counts, n, params.lead_weight)
    # n-grams of the title's content words only: "after", "says" would make noise otherwise
    chars = _char_block(counts[:n], vocabulary, params.ngram_max)
    return normalise_rows(sp.hstack([words, chars], format="csr"))


TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
_SEPARATOR = "SEPARATOR"  # upper case: never a token of lowercased text


def word_counts(texts: list[str]) -> tuple[sp.csr_matrix, list[str]]:
    """Counts of the lowercased words (2+ characters, English stop words left out) per text,
    float32 with sorted indices, and the vocabulary, sorted (TfidfVectorizer's analyzer)."""
    tokens = TOKEN.findall(f" {_SEPARATOR} ".join([text.lower() for text in texts]))
    first_seen: defaultdict[str, int] = defaultdict()
    first_seen.default_factory = first_seen.__len__
    seen = np.fromiter(map(first_seen.__getitem__, tokens), dtype=np.int32, count=len(tokens))
    vocabulary = sorted(t for t in first_seen if t not in ENGLISH_STOP_WORDS and t != _SEPARATOR)
    column = np.full(len(first_seen), -1, dtype=np.int32)  # stop words: -1
    column[[first_seen[t] for t in vocabulary]] = np.arange(len(vocabulary), dtype=np.int32)
    if _SEPARATOR in first_seen:
        column[first_seen[_SEPARATOR]] = -2
    cols = column[seen]
    rows = np.cumsum(cols == -2, dtype=np.int32)  # the text each token belongs to
    words = cols >= 0
    counts = sp.csr_matrix(
        (np.ones(int(words.sum()), dtype=np.float32), (rows[words], cols[words])),
        shape=(len(texts), len(vocabulary)),
    )
    counts.sum_duplicates()
    return counts, vocabulary


def _word_block(counts: sp.csr_matrix, n: int, lead_weight: float) -> sp.csr_matrix:
    """Title (rows up to n) and lead (the rest, times ``lead_weight``) over one vocabulary and
    one IDF."""
    if counts.shape[1] == 0:  # no usable word at all (empty or stop words only)
        return sp.csr_matrix((n, 0), dtype=np.float32)
    both = tfidf(counts)
    title_part = normalize(both[:n])
    lead_part = normalize(both[n:])
    return normalise_rows(title_part + lead_weight * lead_part)


def _char_block(title_words: sp.csr_matrix, vocabulary: list[str], ngram_max: int) -> sp.csr_matrix:
    """TF-IDF of the char_wb 3- to ``ngram_max``-grams of the titles' words: (title x word) @
    (word x n-gram)."""
    used = np.flatnonzero(np.bincount(title_words.indices, minlength=len(vocabulary)))
    grams = [_char_wb_ngrams(vocabulary[w], high=ngram_max) for w in used.tolist()]
    flat = np.array(list(chain.from_iterable(grams)), dtype=f"<U{ngram_max}")
    if not flat.size:  # no word in any title
        return sp.csr_matrix((title_words.shape[0], 0), dtype=np.float32)
    # sorted n-grams, as sklearn orders them (numpy compares code points, as Python does)
    names, cols = np.unique(flat, return_inverse=True)
    word_grams = sp.csr_matrix(
        (
            np.ones(flat.size, dtype=np.float32),
            (np.repeat(used, [len(g) for g in grams]), cols.ravel()),
        ),
        shape=(len(vocabulary), names.size),
    )
    counts = sp.csr_matrix(title_words @ word_grams)
    counts.sort_indices()
    return tfidf(counts)


def _char_wb_ngrams(word: str, *, low: int = 3, high: int) -> list[str]:
    """sklearn's char_wb n-grams of one word: padded with a space each side, a short word once."""
    padded = f" {word} "
    size = len(padded)
    out: list[str] = []
    for n in range(low, high + 1):
        if size <= n:
            out.append(padded)
            break
        out.extend([padded[i : i + n] for i in range(size - n + 1)])
    return out


def tfidf(counts: sp.csr_matrix) -> sp.csr_matrix:
    """What TfidfTransformer(sublinear_tf=True) makes of float32 counts: smooth IDF, l2 rows."""
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32)
    df += 1.0
    idf = np.full_like(df, fill_value=n_docs + 1, dtype=np.float32)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    out = counts.copy()
    np.log(out.data, out.data)
    out.data += 1.0
    out.data *= idf[out.indices]
    return sp.csr_matrix(normalize(out, norm="l2", copy=False))


def normalise_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit length (all-zero rows stay zero: they match nothing)."""
    if matrix.shape[1] == 0:  # no vocabulary at all
        return sp.csr_matrix((matrix.shape[0], 1), dtype=np.float32)
    return sp.csr_matrix(normalize(matrix, norm="l2", copy=False))
