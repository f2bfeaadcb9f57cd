"""Articles -> stories: TF-IDF features, sparse neighbours, average linkage, stable story ids.

Pure: no I/O. The steps, each a small function below:

1. features: word TF-IDF over the title plus the lead of the text and the words of the URL's
   path, a second headline many sites write (title weighted up), and character n-grams of the
   title (they match "taper"/"tapering", "UniCredit"/"Unicredit");
2. smoothing: each vector borrows a little of its close neighbours' vectors, so two headlines
   that share no word but share neighbours ("Mt. Gox files" / "bitcoin exchange seeks
   bankruptcy") become similar; a second-order similarity, computed on sparse neighbours only;
3. average linkage over a sparse similarity graph (pairs below a floor count as 0), merging
   while the average similarity between two groups reaches the threshold; a pair's similarity
   is discounted by the hours between the two articles (TimeDiscount: Tuesday's market close
   is not Monday's);
4. identity: two stories of an earlier run share a group only when clearly alike (stickiness,
   STICKY_MARGIN); continuing stories keep their ids, new ones get ids derived from their
   oldest article, so reruns on the same data give the same ids.

Optionally (``embedder=``, see aggregator.embed) a sentence embedding of title and lead joins
the TF-IDF cosine in step 3, so one event reported in several languages becomes one story.

Memory stays bounded for 10k+ articles: similarities are computed in row blocks and only the
strongest neighbours of each article are kept; no n x n dense matrix is ever built. Past
EXACT_MAX_ARTICLES (TF-IDF alone) the window is cut into time slices compared exactly, and the
slices' groups are merged by average linkage on their mean vectors (the exact average over
their members' pairs), so work grows linearly and a big story keeps its frequent words. The
sparse products run on two threads (scipy releases the GIL); the linkage works on arrays
(reciprocal best pairs merged in rounds), so 50k articles cluster in about 23 s.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from urllib.parse import unquote, urlsplit

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.preprocessing import normalize

from aggregator.embed import Embedder
from aggregator.records import Article, Story

# Average cosine similarity (of smoothed vectors) two groups need to merge. Tuned on the UCI
# news aggregator headlines (B-cubed F1 0.85, flat from 0.095 to 0.11), the hand-written window
# in tests/fixtures/cluster and the demo outlets (at 0.1 the demo merged a budget deal with a
# rate cut in the same country; from 0.105 B-cubed precision there is 1.0, F1 0.98).
DEFAULT_THRESHOLD = 0.105
GENERAL_CATEGORY = "general"  # the default category of a source (see sources.Source)

LEAD_WORDS = 60  # words of the text used beside the title
LEAD_WEIGHT = 0.5  # the lead counts half as much as the title in the word block
SMOOTH_NEIGHBOURS = 20  # neighbours whose vectors an article borrows from
SMOOTH_MIN_SIM = 0.2  # ...only when at least this similar: a chance overlap lends nothing
SMOOTH_WEIGHT = 3.0  # weight of the borrowed vector against the article's own
SMOOTH_MAX_TERMS = 300  # borrowed terms kept per article (bounds memory)
GRAPH_MIN_SIM = 0.05  # similarities below this count as 0 in the linkage (sparse graph)
GRAPH_MAX_NEIGHBOURS = 400  # strongest neighbours kept per article in the linkage graph
BLOCK_CELLS = 4_000_000  # dense cells per row block when computing similarities

# Stickiness: a group holding members of two stories of an earlier run keeps them together only
# when their average similarity reaches STICKY_MARGIN times the threshold; a rerun does not
# fold one established story into another on a borderline score (see _keep_stories_apart).
STICKY_MARGIN = 1.5

# With sentence embeddings (cluster_articles(..., embedder=...)) the linkage graph scores a pair
# (1 - EMBED_WEIGHT) * TF-IDF cosine + EMBED_WEIGHT * rescaled embedding cosine; languages then
# meet. Two unrelated headlines still get an embedding cosine of 0.1-0.4 (same country, same
# kind of news), so the cosine is rescaled to max(0, (cos - EMBED_FLOOR) / (1 - EMBED_FLOOR)).
EMBED_WEIGHT = 0.6
EMBED_FLOOR = 0.3
# The default threshold of that combined similarity. Lower scores better on UCI (F1 0.86 at
# 0.1 against 0.833 here, see tests/test_uci_clustering.py), but from 0.12 down a strike and a
# rate decision in one country (tests/fixtures/cluster/multilingual.json) become one story.
EMBED_THRESHOLD = 0.13
EMBED_LEAD_WORDS = 30  # words of the lead embedded beside the title (the encoder's cost grows)

# Past EXACT_MAX_ARTICLES (TF-IDF alone) comparing every pair costs too much (50k: ~17x the
# pairs of 12k). The window, oldest first, is cut into slices of SLICE_ARTICLES, each grouped
# exactly (its linkage graph keeps SLICE_NEIGHBOURS per article); then the slices' groups merge
# by average linkage on the dot products of their mean vectors (MEAN_MAX_TERMS largest terms
# each), which is the average similarity over all their members' pairs. The smoothing
# neighbours come from the slice and from the pairs sharing a rare feature (one held by at most
# CANDIDATE_MAX_DF articles: a name) anywhere in the window, so a story that trickles in all
# day still meets itself; past EXACT_MAX_ARTICLES groups, they too meet through rare features.
# Measured (python -m benchmarks cluster, "uci x8"): the UCI headlines eight times over,
# reworded (51k articles, stories of 500 to 2,500), B-cubed F1 0.887; comparing only the pairs
# that share a feature held by at most 500 articles, as before, gave 0.214 there (a story
# larger than that lost its own words).
EXACT_MAX_ARTICLES = 12_000
CANDIDATE_MAX_DF = 100
SLICE_ARTICLES = 3_000
SLICE_NEIGHBOURS = 200
MEAN_MAX_TERMS = 400

_WORKERS = min(2, os.cpu_count() or 1)  # threads for the sparse products (2 pay on 2 cores)


@dataclass(frozen=True)
class TimeDiscount:
    """How the hours between two articles discount their similarity in the linkage graph.

    Within ``grace_hours`` of each other two articles are compared by content alone (an event's
    coverage unfolds over a morning); past it the similarity is multiplied by
    exp(-(gap - grace_hours) / scale_hours), never by less than ``floor``. So a report a day
    later continues a story when it is clearly about it (similarity of at least threshold /
    floor), while a loosely alike one starts a new story: Tuesday's market close is not Monday's.
    Measured on the UCI headlines (tests/test_uci_clustering.py): B-cubed F1 0.798 without it,
    0.851 with it; with each story's headlines spread over 6 h instead of UCI's crawl batches of
    a few seconds, still 0.848.
    """

    grace_hours: float = 6.0
    scale_hours: float = 12.0
    floor: float = 0.3

    def factors(self, gap_hours: np.ndarray) -> np.ndarray:
        """The multiplier of each pair's similarity, from the hours between the two."""
        past = np.maximum(gap_hours - self.grace_hours, 0.0)
        return np.maximum(self.floor, np.exp(-past / self.scale_hours))


DEFAULT_TIME = TimeDiscount()


@dataclass(frozen=True)
class ClusterResult:
    """Stories of one clustering run and the previous stories folded into others."""

    stories: tuple[Story, ...]  # ordered by their oldest article
    merged: dict[str, str]  # previous story id -> id of the story that absorbed it


def cluster_articles(
    articles: Sequence[Article],
    previous: Mapping[str, str] | None = None,
    *,
    threshold: float | None = None,
    embedder: Embedder | None = None,
    time: TimeDiscount | None = DEFAULT_TIME,
) -> ClusterResult:
    """Group articles into stories; ``previous`` maps article id -> story id from earlier runs.

    ``threshold`` defaults to DEFAULT_THRESHOLD (TF-IDF alone) or EMBED_THRESHOLD (with an
    ``embedder``, see aggregator.embed: articles in different languages can then meet).
    ``time`` discounts the similarity of articles far apart in time (None: content alone).
    """
    ordered = _canonical_order(articles)
    if not ordered:
        return ClusterResult((), {})
    vectors = article_vectors(ordered)
    dense = None
    if embedder is not None:
        dense = embedder.embed([embedding_text(a) for a in ordered]).astype(np.float32)
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if dense is None else EMBED_THRESHOLD
    hours = np.array([a.timestamp.timestamp() / 3600 for a in ordered])
    codes = _previous_codes(ordered, previous or {})
    groups = _group(vectors, threshold, dense, codes, None if time is None else (hours, time))
    ids, merged = assign_story_ids(
        [[ordered[i].id for i in group] for group in groups], previous or {}
    )
    stories = tuple(
        _story(story_id, [ordered[i] for i in group], central)
        for story_id, group, central in zip(
            ids, groups, _most_central(vectors, groups), strict=True
        )
    )
    return ClusterResult(stories, merged)


# -- features --------------------------------------------------------------------------------


def _canonical_order(articles: Iterable[Article]) -> list[Article]:
    """Oldest first, then by id, one record per id: the same set gives the same run."""
    unique: dict[str, Article] = {}
    for article in sorted(articles, key=_age_key):
        unique.setdefault(article.id, article)
    return list(unique.values())


def _age_key(article: Article) -> tuple[float, str]:
    return (article.timestamp.timestamp(), article.id)


def lead(text: str, words: int = LEAD_WORDS) -> str:
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


def embedding_text(article: Article) -> str:
    """What the sentence encoder reads: the title, then the start of the lead."""
    return f"{article.title}. {lead(article.text, EMBED_LEAD_WORDS)}".strip(" .")


def article_vectors(articles: Sequence[Article]) -> sp.csr_matrix:
    """L2-normalised sparse vectors: word TF-IDF (title + URL words and lead) beside title
    character n-grams.

    The same matrices as TfidfVectorizer(sublinear_tf=True, stop_words="english") over titles
    and leads, and TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5))
    over the titles' content words (vocabularies in the same sorted order), built faster: all
    texts are tokenised in one pass, and a title's character n-grams are the sum of its words'
    n-grams, each distinct word cut into n-grams once.
    """
    n = len(articles)
    counts, vocabulary = _word_counts(
        [a.title for a in articles] + [f"{url_words(a.url)} {lead(a.text)}" for a in articles]
    )
    words = _word_block(counts, n)
    # n-grams of the title's content words only: "after", "says" would make noise otherwise
    chars = _char_block(counts[:n], vocabulary)
    return _normalise(sp.hstack([words, chars], format="csr"))


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
_SEPARATOR = "SEPARATOR"  # upper case: never a token of lowercased text
NGRAM_MAX = 5  # character n-grams of 3 to 5 characters


def _word_counts(texts: list[str]) -> tuple[sp.csr_matrix, list[str]]:
    """Counts of the lowercased words (2+ characters, English stop words left out) per text,
    float32 with sorted indices, and the vocabulary, sorted (TfidfVectorizer's analyzer)."""
    tokens = _TOKEN.findall(f" {_SEPARATOR} ".join([text.lower() for text in texts]))
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


def _word_block(counts: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Title (rows up to n) and lead (the rest) over one vocabulary and one IDF, the title
    weighted up."""
    if counts.shape[1] == 0:  # no usable word at all (empty or stop words only)
        return sp.csr_matrix((n, 0), dtype=np.float32)
    both = _tfidf(counts)
    title_part = normalize(both[:n])
    lead_part = normalize(both[n:])
    return _normalise(title_part + LEAD_WEIGHT * lead_part)


def _char_block(title_words: sp.csr_matrix, vocabulary: list[str]) -> sp.csr_matrix:
    """TF-IDF of the char_wb 3-5-grams of the titles' words: (title x word) @ (word x n-gram)."""
    used = np.flatnonzero(np.bincount(title_words.indices, minlength=len(vocabulary)))
    grams = [_char_wb_ngrams(vocabulary[w]) for w in used.tolist()]
    flat = np.array(list(chain.from_iterable(grams)), dtype=f"<U{NGRAM_MAX}")
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
    return _tfidf(counts)


def _char_wb_ngrams(word: str, low: int = 3, high: int = NGRAM_MAX) -> list[str]:
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


def _tfidf(counts: sp.csr_matrix) -> sp.csr_matrix:
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


def _normalise(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit length (all-zero rows stay zero: they match nothing)."""
    if matrix.shape[1] == 0:  # no vocabulary at all
        return sp.csr_matrix((matrix.shape[0], 1), dtype=np.float32)
    return sp.csr_matrix(normalize(matrix, norm="l2", copy=False))


# -- neighbours and smoothing ----------------------------------------------------------------


def top_neighbours(
    vectors: sp.csr_matrix,
    k: int,
    min_sim: float,
    dense: np.ndarray | None = None,
    weight: float = EMBED_WEIGHT,
) -> sp.csr_matrix:
    """Row i holds up to ``k`` similarities >= ``min_sim`` to other rows (not itself).

    The similarity is the dot product of ``vectors`` (the cosine of unit rows), or, with
    ``dense`` (unit rows, one per article), that cosine mixed with the rescaled cosine of
    ``dense`` (see EMBED_FLOOR). Past EXACT_MAX_ARTICLES rows without ``dense``, only the pairs
    sharing a rarer feature are compared (see _candidate_neighbours).
    """
    n = vectors.shape[0]
    if dense is None and n > EXACT_MAX_ARTICLES:
        return _candidate_neighbours(vectors, k, min_sim)
    transposed = vectors.T.tocsr()  # measured: faster products than CSC here
    dense_t = None if dense is None else np.ascontiguousarray(dense.T)
    block = max(1, BLOCK_CELLS // max(n, 1))

    def strongest(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stop = min(n, start + block)
        scores = (vectors[start:stop] @ transposed).toarray()
        if dense is not None and dense_t is not None:
            scores *= 1.0 - weight
            semantic = dense[start:stop] @ dense_t
            semantic -= EMBED_FLOOR
            np.maximum(semantic, 0.0, out=semantic)
            scores += (weight / (1.0 - EMBED_FLOOR)) * semantic
        local = np.arange(stop - start)
        scores[local, local + start] = 0.0  # an article is not its own neighbour
        r, c, s = _strongest(scores, k, min_sim)
        return r + start, c, s

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # the products run without the GIL
        parts = list(pool.map(strongest, range(0, n, block)))
    rows, cols, sims = (np.concatenate([part[i] for part in parts]) for i in range(3))
    return sp.csr_matrix((sims, (rows, cols)), shape=(n, n))


def _candidate_neighbours(vectors: sp.csr_matrix, k: int, min_sim: float) -> sp.csr_matrix:
    """Like top_neighbours, with the features held by more than CANDIDATE_MAX_DF rows left out.

    Without them the product is sparse: a row meets only the few others that share a name or a
    rarer word with it, so the work grows with those pairs, not with the square of the window.
    The similarity is the dot product over the rarer features alone (a lower bound); frequent
    words count where rows are compared exactly (within a time slice, and between the slices'
    groups while they are at most EXACT_MAX_ARTICLES).
    """
    n = vectors.shape[0]
    df = np.bincount(vectors.indices, minlength=vectors.shape[1])
    rare = _keep_columns(vectors, df <= CANDIDATE_MAX_DF)
    rows, cols, sims = _similar_pairs(rare, min_sim)
    # each pair was scored once (row < col); both articles see it
    return _top_per_row(
        n,
        np.concatenate([rows, cols]),
        np.concatenate([cols, rows]),
        np.concatenate([sims, sims]),
        k,
    )


def _keep_columns(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The matrix with the entries outside the columns ``keep`` removed (sorted indices)."""
    matrix = sp.csr_matrix(matrix)
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    mask = keep[matrix.indices]
    kept_before = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    indptr = kept_before[matrix.indptr]
    return sp.csr_matrix((matrix.data[mask], matrix.indices[mask], indptr), shape=matrix.shape)


def _similar_pairs(
    rare: sp.csr_matrix, min_sim: float, block: int = 2_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, dot) of the pairs row < col whose dot product reaches ``min_sim``.

    Row blocks against the rows after them only (half the work of the full product), on as
    many threads as there are cores: scipy's sparse product runs without the GIL.
    """
    n = rare.shape[0]
    workers = _WORKERS

    def pairs(start: int, after: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        product = sp.csr_matrix(rare[start : start + block] @ after)
        where = np.flatnonzero(product.data >= min_sim)
        r = np.searchsorted(product.indptr, where, side="right") - 1 + start
        c = product.indices[where].astype(np.int64)
        upper = c > r
        return r[upper], c[upper], product.data[where][upper]

    after = sp.csr_matrix(rare.T)  # feature x article, articles ascending in each row
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: deque[Future[tuple[np.ndarray, np.ndarray, np.ndarray]]] = deque()
        for start in range(0, n, block):
            if start:  # drop the previous block's articles: a prefix of each feature's row
                previous = rare.indices[rare.indptr[start - block] : rare.indptr[start]]
                after = _drop_prefix(after, np.bincount(previous, minlength=after.shape[0]))
            running.append(pool.submit(pairs, start, after))
            if len(running) > workers:  # a few blocks in flight: memory stays bounded
                parts.append(running.popleft().result())
        parts.extend(future.result() for future in running)
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))  # type: ignore[return-value]


def _drop_prefix(matrix: sp.csr_matrix, counts: np.ndarray) -> sp.csr_matrix:
    """The matrix without the first ``counts[i]`` entries of each row i."""
    lengths = np.diff(matrix.indptr) - counts
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    keep = np.ones(matrix.nnz, dtype=bool)
    first = matrix.indptr[:-1]
    dropped = np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    keep[dropped] = False
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def _top_per_row(
    n: int, rows: np.ndarray, cols: np.ndarray, sims: np.ndarray, k: int
) -> sp.csr_matrix:
    """n x n matrix of the entries, each row cut to its ``k`` largest (ties at the cut kept)."""
    counts = np.bincount(rows, minlength=n)
    over = counts > k
    if over.any():  # only the rows with more than k entries are sorted
        inside = over[rows]
        order = np.lexsort((-sims[inside], rows[inside]))  # by row, the largest first
        ranked = sims[inside][order]
        starts = np.cumsum(counts[over]) - counts[over]
        cut = np.full(n, -np.inf, dtype=np.float64)
        cut[over] = ranked[starts + k - 1]
        keep = sims >= cut[rows]
        rows, cols, sims = rows[keep], cols[keep], sims[keep]
    return sp.csr_matrix((sims, (rows, cols)), shape=(n, n))


def _strongest(dense: np.ndarray, k: int, min_sim: float) -> tuple[np.ndarray, ...]:
    """(row, col, sim) of the ``k`` largest entries per row that reach ``min_sim``."""
    keep = dense >= min_sim
    if k < dense.shape[1]:  # rows with more than k such entries: the k largest
        heavy = np.flatnonzero(np.count_nonzero(keep, axis=1) > k)
        if heavy.size:
            top = np.argpartition(-dense[heavy], k - 1, axis=1)[:, :k]
            largest = np.zeros((heavy.size, dense.shape[1]), dtype=bool)
            np.put_along_axis(largest, top, True, axis=1)
            keep[heavy] &= largest
    r, c = np.nonzero(keep)
    return r, c, dense[r, c]


def smooth(
    vectors: sp.csr_matrix,
    neighbours: sp.csr_matrix | None = None,
    weight: float = SMOOTH_WEIGHT,
) -> sp.csr_matrix:
    """Each vector plus a weighted mean of its close neighbours, renormalised.

    Neighbour j of i counts sim_ij^2 / sum_j sim_ij: the closest speak loudest, and the borrowed
    mass is at most the best similarity, so a lone, weak neighbour lends little (an article
    with no close neighbour stays as it was).
    """
    graph = neighbours
    if graph is None:
        graph = top_neighbours(vectors, SMOOTH_NEIGHBOURS, SMOOTH_MIN_SIM)
    totals = np.asarray(graph.sum(axis=1)).ravel()
    graph.data **= 2
    graph = sp.csr_matrix(sp.diags(1 / np.maximum(totals, 1e-12)) @ graph)
    borrowed = _keep_largest(sp.csr_matrix(graph @ vectors), SMOOTH_MAX_TERMS)
    return _normalise(vectors + weight * borrowed)


def _keep_largest(matrix: sp.csr_matrix, per_row: int) -> sp.csr_matrix:
    """Zero all but the ``per_row`` largest entries of each row."""
    matrix = matrix.tocsr(copy=True)
    for i in range(matrix.shape[0]):
        start, stop = matrix.indptr[i], matrix.indptr[i + 1]
        if stop - start > per_row:
            row = matrix.data[start:stop]
            cut = np.partition(row, -per_row)[-per_row]
            row[row < cut] = 0.0
    matrix.eliminate_zeros()
    return matrix


# -- average linkage -------------------------------------------------------------------------


def _previous_codes(articles: Sequence[Article], previous: Mapping[str, str]) -> np.ndarray:
    """Per article, a number standing for its previous story (-1: none)."""
    codes: dict[str, int] = {}
    return np.array(
        [
            codes.setdefault(previous[a.id], len(codes)) if a.id in previous else -1
            for a in articles
        ],
        dtype=np.int64,
    )


def _group(
    vectors: sp.csr_matrix,
    threshold: float,
    dense: np.ndarray | None = None,
    stories_before: np.ndarray | None = None,
    time: tuple[np.ndarray, TimeDiscount] | None = None,
) -> list[list[int]]:
    """Row indices grouped by average linkage, each group ascending, groups by first member.

    ``stories_before`` (see _previous_codes) makes earlier stories sticky (see STICKY_MARGIN);
    ``time`` (each row's time in hours, the discount) lowers pairs far apart in time. Rows are
    oldest first; past EXACT_MAX_ARTICLES (TF-IDF alone) they are grouped in time slices and
    the slices' groups merged by their mean vectors (see SLICE_ARTICLES).
    """
    n = vectors.shape[0]
    if n == 1:
        return [[0]]
    sliced = dense is None and n > EXACT_MAX_ARTICLES
    if sliced:
        smoothed = smooth(vectors, _window_neighbours(vectors))
        graph = sp.block_diag(
            [
                _linkage_graph(
                    smoothed[start : start + SLICE_ARTICLES], None, time, start, SLICE_NEIGHBOURS
                )
                for start in range(0, n, SLICE_ARTICLES)
            ],
            format="coo",
        )
    else:
        smoothed = smooth(vectors)
        graph = _linkage_graph(smoothed, dense, time, 0)
    labels = np.asarray(average_linkage(n, graph.row, graph.col, graph.data, threshold))
    if sliced:
        labels = _merge_fragments(smoothed, labels, threshold, time)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(index)
    if stories_before is None or not (stories_before >= 0).any():
        return sorted(groups.values())
    if sliced:  # pairs across slices are not in the graph: sums of the smoothed vectors

        def pairwise(group: list[int], parts: np.ndarray) -> np.ndarray:
            rows = smoothed[group]
            own = np.asarray(rows.multiply(rows).sum(axis=1))  # a member's 1 to itself
            return np.asarray(rows @ (rows.T @ parts)) - own * parts

    else:
        similar = sp.csr_matrix(graph.tocsr() + graph.T.tocsr())

        def pairwise(group: list[int], parts: np.ndarray) -> np.ndarray:
            return np.asarray(similar[group][:, group] @ parts)

    margin = STICKY_MARGIN * threshold
    return sorted(
        part
        for group in groups.values()
        for part in _keep_stories_apart(group, pairwise, stories_before, margin)
    )


def _linkage_graph(
    smoothed: sp.csr_matrix,
    dense: np.ndarray | None,
    time: tuple[np.ndarray, TimeDiscount] | None,
    offset: int,
    k: int = GRAPH_MAX_NEIGHBOURS,
) -> sp.coo_matrix:
    """The linkage graph of rows ``offset`` on: each pair once (upper triangle), discounted by
    the hours between the two."""
    graph = top_neighbours(smoothed, k, GRAPH_MIN_SIM, dense)
    graph = sp.triu(graph.maximum(graph.T), k=1).tocoo()
    if time is not None:
        hours, discount = time
        gaps = np.abs(hours[graph.row + offset] - hours[graph.col + offset])
        graph.data *= discount.factors(gaps)
    return graph


def _window_neighbours(vectors: sp.csr_matrix) -> sp.csr_matrix:
    """The smoothing neighbours of a window past EXACT_MAX_ARTICLES: the closest of those found
    exactly within each time slice and of those sharing a rare feature anywhere in the window
    (a story that trickles in all day has members in many slices)."""
    n = vectors.shape[0]
    within = sp.block_diag(
        [
            top_neighbours(
                vectors[start : start + SLICE_ARTICLES], SMOOTH_NEIGHBOURS, SMOOTH_MIN_SIM
            )
            for start in range(0, n, SLICE_ARTICLES)
        ],
        format="csr",
    )
    across = _candidate_neighbours(vectors, SMOOTH_NEIGHBOURS, SMOOTH_MIN_SIM)
    both = within.maximum(across).tocoo()
    return _top_per_row(n, both.row, both.col, both.data, SMOOTH_NEIGHBOURS)


def _merge_fragments(
    smoothed: sp.csr_matrix,
    labels: np.ndarray,
    threshold: float,
    time: tuple[np.ndarray, TimeDiscount] | None,
) -> np.ndarray:
    """Labels after merging the groups of the time slices by average linkage on their members'
    average similarity: the dot product of the groups' mean vectors (every pair of members
    counted, whatever slice they are in). A story's fragments from different hours meet here,
    and so do the articles linked to it only by its frequent words."""
    n = smoothed.shape[0]
    _, label, size = np.unique(labels, return_inverse=True, return_counts=True)
    groups = size.size
    members = sp.csr_matrix((1 / size[label], (label, np.arange(n))), shape=(groups, n))
    means = _keep_largest(sp.csr_matrix(members @ smoothed), MEAN_MAX_TERMS)
    if time is not None:  # a group's time: its members' mean
        hours, discount = time
        time = (np.bincount(label, weights=hours, minlength=groups) / size, discount)
    graph = _linkage_graph(means, None, time, 0)
    merged = average_linkage(groups, graph.row, graph.col, graph.data, threshold, sizes=size)
    return np.asarray(merged)[label]


def _keep_stories_apart(
    group: list[int],
    pairwise: Callable[[list[int], np.ndarray], np.ndarray],
    stories_before: np.ndarray,
    margin: float,
) -> list[list[int]]:
    """A group cut into its earlier stories, rejoined while two parts average ``margin``.

    ``pairwise(group, parts)`` gives, per member, the sum of its similarities to the members
    of each part (``parts``: member x part, 0 or 1). Each new article (code -1) goes with the
    earlier story it is most similar to on average; parts rejoin by average linkage (the
    highest average first), as in average_linkage.
    """
    before = stories_before[group]
    codes = sorted(set(before[before >= 0].tolist()))
    if len(codes) < 2:
        return [group]
    seeds = np.array([before == code for code in codes], dtype=np.float64).T  # member x part
    affinity = pairwise(group, seeds) / seeds.sum(axis=0)  # member x part: average similarity
    part = np.where(before >= 0, np.searchsorted(codes, before), affinity.argmax(axis=1))
    members = np.eye(len(codes))[part]  # member x part, one-hot
    sums = members.T @ pairwise(group, members)  # part x part: sum of similarities between them
    sizes = members.sum(axis=0)
    alive = list(range(len(codes)))
    while len(alive) > 1:
        average, a, b = max(
            (sums[a, b] / (sizes[a] * sizes[b]), a, b) for a in alive for b in alive if a < b
        )
        if average < margin:
            break
        sums[a] += sums[b]
        sums[:, a] += sums[:, b]
        sizes[a] += sizes[b]
        part[part == b] = a
        alive.remove(b)
    return [[m for m, of in zip(group, part, strict=True) if of == a] for a in alive]


def average_linkage(
    n: int,
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    sims: Sequence[float] | np.ndarray,
    threshold: float,
    sizes: np.ndarray | None = None,
) -> list[int]:
    """Cluster label per item: merge the two groups of highest average similarity while it is
    at least ``threshold``; pairs absent from the sparse graph count as similarity 0 (each pair
    given once, row != col). With ``sizes`` the items are groups already, of that many members
    each, and ``sims`` the average similarity between their members.

    Reciprocal nearest neighbours, merged in rounds (RAC, Sumengen et al. 2021): every group
    finds its best partner (highest average, ties to the smaller id) and all pairs that choose
    each other merge at once. Average linkage is reducible (merging never raises an average
    above the best of its parts), so this gives the same groups as merging one best pair at a
    time; a group whose best average fell below the threshold is final and leaves the graph.
    Each round is a few array operations over the remaining links.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    sims = np.asarray(sims, dtype=np.float64)
    label = np.arange(n)  # item -> its group, named by one of its members
    size = np.ones(n) if sizes is None else np.asarray(sizes, dtype=np.float64).copy()
    everyone = np.arange(n)
    if sizes is not None:
        sims = sims * size[rows] * size[cols]
    links = _links(
        np.concatenate([rows, cols]), np.concatenate([cols, rows]), np.concatenate([sims, sims]), n
    )
    while links.nnz:
        indptr, col, total = links.indptr, links.indices, links.data
        counts = np.diff(indptr)
        row = np.repeat(everyone, counts)
        average = total / (size[row] * size[col])
        linked = np.flatnonzero(counts)
        best = np.full(n, -np.inf)
        best[linked] = np.maximum.reduceat(average, indptr[linked])
        at_best = np.flatnonzero(average == best[row])
        first = np.ones(at_best.size, dtype=bool)
        first[1:] = row[at_best[1:]] != row[at_best[:-1]]
        partner = np.full(n, -1)
        partner[row[at_best[first]]] = col[at_best[first]]  # columns ascend: the smaller on ties
        alive = best >= threshold
        keep = np.flatnonzero(alive & (partner > everyone))
        keep = keep[partner[partner[keep]] == keep]
        if keep.size == 0:
            break
        gone = partner[keep]
        to = everyone.copy()
        to[gone] = keep
        size[keep] += size[gone]
        label = to[label]
        still = alive[row] & alive[col]
        row, col, total = to[row[still]], to[col[still]], total[still]
        apart = row != col
        links = _links(row[apart], col[apart], total[apart], n)
    return label.tolist()


def _links(rows: np.ndarray, cols: np.ndarray, sums: np.ndarray, n: int) -> sp.csr_matrix:
    """Group x group sums of similarities; duplicate pairs add up, columns ascend in each row."""
    links = sp.csr_matrix((sums, (rows, cols)), shape=(n, n))
    links.sum_duplicates()
    return links


# -- stories and their ids -------------------------------------------------------------------


def assign_story_ids(
    groups: Sequence[Sequence[str]], previous: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """A story id per group (article ids, oldest first) and the map of absorbed stories.

    A previous story keeps its id on the group holding most of its members; a group takes the
    previous story with most members in it (ties: smaller id). Claims are granted greedily from
    the largest overlap down, so an id is never used twice. A group left without an id gets one
    derived from its oldest article.
    """
    overlaps = _overlaps(groups, previous)
    ids: list[str | None] = [None] * len(groups)
    taken: set[str] = set()
    for _count, story_id, index in sorted(overlaps, key=lambda o: (-o[0], o[1], o[2])):
        if ids[index] is None and story_id not in taken:
            ids[index] = story_id
            taken.add(story_id)
    avoid = taken | set(previous.values())
    final: list[str] = []
    for index, group in enumerate(groups):
        story_id = ids[index] or new_story_id(group[0], avoid)
        avoid.add(story_id)
        final.append(story_id)
    return final, _merged(overlaps, final, taken)


def _overlaps(
    groups: Sequence[Sequence[str]], previous: Mapping[str, str]
) -> list[tuple[int, str, int]]:
    """(members in common, previous story id, group index) for every overlapping pair."""
    out: list[tuple[int, str, int]] = []
    for index, group in enumerate(groups):
        counts = Counter(previous[a] for a in group if a in previous)
        out.extend((count, story_id, index) for story_id, count in counts.items())
    return out


def _merged(
    overlaps: list[tuple[int, str, int]], ids: Sequence[str], kept: set[str]
) -> dict[str, str]:
    """Previous stories that lost their id -> the story now holding most of their members."""
    best: dict[str, tuple[int, str]] = {}
    for count, story_id, index in overlaps:
        if story_id in kept:
            continue
        candidate = (-count, ids[index])
        if story_id not in best or candidate < best[story_id]:
            best[story_id] = candidate
    return {old: new for old, (_, new) in sorted(best.items())}


def new_story_id(oldest_article_id: str, avoid: Collection[str] = ()) -> str:
    """16 hex chars derived from the oldest article id; salted when that id is already in use."""
    salt = 0
    while True:
        key = f"story:{oldest_article_id}" + (f":{salt}" if salt else "")
        story_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        if story_id not in avoid:
            return story_id
        salt += 1


def _story(story_id: str, members: Sequence[Article], central: int) -> Story:
    """A Story record for members given oldest first, titled by member ``central``."""
    times = [a.timestamp for a in members]
    categories = Counter(a.category for a in members if a.category)
    if len(categories) > 1:  # a general outlet's "general" says less than a desk's "business"
        categories.pop(GENERAL_CATEGORY, None)
    category = min(categories, key=lambda c: (-categories[c], c)) if categories else ""
    return Story(
        id=story_id,
        article_ids=tuple(a.id for a in members),
        title=members[central].title,
        first_seen=min(times),
        updated=max(times),
        category=category,
    )


def _most_central(vectors: sp.csr_matrix, groups: Sequence[Sequence[int]]) -> list[int]:
    """Per group, the position of the member closest to the group's centroid (the oldest on
    ties): the largest sum of cosines to the other members.

    That sum is the member's dot product with the group's sum vector less its own square (1 up
    to float32 rounding), computed in float64 and rounded, so the two members of a pair tie
    exactly and the oldest wins. Groups are laid one after the other and scored in runs of a
    few hundred rows against the sums of the groups in the run: the work grows with the
    members, not with the square of a group's size.
    """
    sizes = np.array([len(group) for group in groups], dtype=np.int64)
    central = np.zeros(len(groups), dtype=np.int64)
    shared = np.flatnonzero(sizes > 1)
    if shared.size == 0:
        return central.tolist()
    members = np.concatenate([np.asarray(groups[g], dtype=np.int64) for g in shared.tolist()])
    label = np.repeat(np.arange(shared.size), sizes[shared])
    ends = np.cumsum(sizes[shared])
    rows = sp.csr_matrix(vectors[members], dtype=np.float64)
    ones = np.ones(members.size)
    sums = sp.csr_matrix(
        (ones, (label, np.arange(members.size))), shape=(shared.size, members.size)
    )
    sums = sp.csr_matrix(sums @ rows)
    scores = -np.asarray(rows.multiply(rows).sum(axis=1)).ravel()  # less the member's own 1
    start = 0
    while start < members.size:  # a run ends with the last group that fits, or its first group
        fits = np.searchsorted(ends, start + 256, side="right") - 1
        last = max(fits, np.searchsorted(ends, start, side="right"))
        stop, first_group = int(ends[last]), int(label[start])
        product = (rows[start:stop] @ sums[first_group : last + 1].T).toarray()
        scores[start:stop] += product[np.arange(stop - start), label[start:stop] - first_group]
        start = stop
    rounded = np.round(scores, 9)
    first = ends - sizes[shared]
    top = np.maximum.reduceat(rounded, first)
    at_top = np.flatnonzero(rounded == top[label])
    earliest = at_top[np.searchsorted(label[at_top], np.arange(shared.size))]
    central[shared] = earliest - first
    return central.tolist()
