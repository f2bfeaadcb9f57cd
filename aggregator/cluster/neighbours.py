"""Sparse nearest neighbours of article vectors, and smoothing by them."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from aggregator.cluster.features import normalise_rows
from aggregator.settings import ClusterParams
from aggregator.workers import cores

# The tuning values (how many neighbours, how similar, the embeddings' weight, the size past
# which large windows are compared in time slices) are ClusterParams' (aggregator.settings).

BLOCK_CELLS = 4_000_000  # dense cells per row block when computing similarities

# threads for the sparse products (2 pay on 2 cores); the cores this process may use, which a
# container's cpuset narrows while os.cpu_count() still counts the host's
_WORKERS = min(2, cores())


# -- neighbours and smoothing ----------------------------------------------------------------


def top_neighbours(
    vectors: sp.csr_matrix,
    k: int,
    min_sim: float,
    params: ClusterParams,
    dense: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Row i holds up to ``k`` similarities >= ``min_sim`` to other rows (not itself).

    The similarity is the dot product of ``vectors`` (the cosine of unit rows), or, with
    ``dense`` (unit rows, one per article), that cosine mixed with the rescaled cosine of
    ``dense`` (see ClusterParams.embed_weight and embed_floor). Past
    ``params.exact_max_articles`` rows without ``dense``, only the pairs sharing a rarer
    feature are compared (see candidate_neighbours).
    """
    n = vectors.shape[0]
    if dense is None and n > params.exact_max_articles:
        return candidate_neighbours(vectors, k, min_sim, params.candidate_max_df)
    weight, floor = params.embed_weight, params.embed_floor
    transposed = vectors.T.tocsr()  # measured: faster products than CSC here
    dense_t = None if dense is None else np.ascontiguousarray(dense.T)
    block = max(1, BLOCK_CELLS // max(n, 1))

    def strongest(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stop = min(n, start + block)
        scores = (vectors[start:stop] @ transposed).toarray()
        if dense is not None and dense_t is not None:
            scores *= 1.0 - weight
            semantic = dense[start:stop] @ dense_t
            semantic -= floor
            np.maximum(semantic, 0.0, out=semantic)
            scores += (weight / (1.0 - floor)) * semantic
        local = np.arange(stop - start)
        scores[local, local + start] = 0.0  # an article is not its own neighbour
        r, c, s = _strongest(scores, k, min_sim)
        return r + start, c, s

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # the products run without the GIL
        parts = list(pool.map(strongest, range(0, n, block)))
    rows, cols, sims = (np.concatenate([part[i] for part in parts]) for i in range(3))
    return sp.csr_matrix((sims, (rows, cols)), shape=(n, n))


def candidate_neighbours(
    vectors: sp.csr_matrix, k: int, min_sim: float, max_df: int
) -> sp.csr_matrix:
    """Like top_neighbours, with the features held by more than ``max_df`` rows left out.

    Without them the product is sparse: a row meets only the few others that share a name or a
    rarer word with it, so the work grows with those pairs, not with the square of the window.
    The similarity is the dot product over the rarer features alone (a lower bound); frequent
    words count where rows are compared exactly (within a time slice, and between the slices'
    groups while they are at most ClusterParams.exact_max_articles).
    """
    n = vectors.shape[0]
    df = np.bincount(vectors.indices, minlength=vectors.shape[1])
    rare = _keep_columns(vectors, df <= max_df)
    rows, cols, sims = _similar_pairs(rare, min_sim)
    # each pair was scored once (row < col); both articles see it
    return top_per_row(
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


def top_per_row(
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
    params: ClusterParams,
    neighbours: sp.csr_matrix | None = None,
) -> sp.csr_matrix:
    """Each vector plus a weighted mean of its close neighbours (by default its
    ``params.smooth_neighbours`` closest), times ``params.smooth_weight``, renormalised.

    Neighbour j of i counts sim_ij^2 / sum_j sim_ij: the closest speak loudest, and the borrowed
    mass is at most the best similarity, so a lone, weak neighbour lends little (an article
    with no close neighbour stays as it was).
    """
    graph = neighbours
    if graph is None:
        graph = top_neighbours(vectors, params.smooth_neighbours, params.smooth_min_sim, params)
    totals = np.asarray(graph.sum(axis=1)).ravel()
    graph.data **= 2
    graph = sp.csr_matrix(sp.diags(1 / np.maximum(totals, 1e-12)) @ graph)
    borrowed = keep_largest(sp.csr_matrix(graph @ vectors), params.smooth_max_terms)
    return normalise_rows(vectors + params.smooth_weight * borrowed)


def keep_largest(matrix: sp.csr_matrix, per_row: int) -> sp.csr_matrix:
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
