"""Average linkage over a sparse similarity graph, discounted by time, in slices past a size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aggregator.cluster.neighbours import (
    candidate_neighbours,
    keep_largest,
    smooth,
    top_neighbours,
    top_per_row,
)
from aggregator.settings import ClusterParams, TimeDiscount


@dataclass(frozen=True)
class Merge:
    """One merge made by average linkage: two groups of rows and how alike they were."""

    left: tuple[int, ...]  # rows of one group, ascending (the group that keeps its name)
    right: tuple[int, ...]  # rows of the other
    similarity: float  # their average similarity when they merged


# Per merge, the pairs of rows (one of each group) to keep apart: none keeps the merge; any
# vetoes it, and no later group may hold both rows of a pair.
Review = Callable[[Sequence[Merge]], Sequence[Sequence[tuple[int, int]]]]

REVIEW_ROUNDS = 40  # reruns of the linkage after vetoes, at most
_VETO = -1e6  # the similarity of a vetoed pair: no average containing it reaches a threshold


def time_factors(discount: TimeDiscount, gap_hours: np.ndarray) -> np.ndarray:
    """The multiplier of each pair's similarity, from the hours between the two."""
    past = np.maximum(gap_hours - discount.grace_hours, 0.0)
    return np.maximum(discount.floor, np.exp(-past / discount.scale_hours))


def group_rows(
    vectors: sp.csr_matrix,
    threshold: float,
    params: ClusterParams,
    dense: np.ndarray | None = None,
    stories_before: np.ndarray | None = None,
    time: tuple[np.ndarray, TimeDiscount] | None = None,
    review: Review | None = None,
) -> list[list[int]]:
    """Row indices grouped by average linkage, each group ascending, groups by first member.

    ``review`` sees the merges and may veto some (see reviewed_linkage).

    ``stories_before`` (see _previous_codes) makes earlier stories sticky (see
    ClusterParams.sticky_margin); ``time`` (each row's time in hours, the discount) lowers pairs
    far apart in time. Rows are oldest first; past ``params.exact_max_articles`` (TF-IDF alone)
    they are grouped in time slices and the slices' groups merged by their mean vectors (see
    ClusterParams.slice_articles).
    """
    n = vectors.shape[0]
    if n == 1:
        return [[0]]
    sliced = dense is None and n > params.exact_max_articles
    if sliced:
        smoothed = smooth(vectors, params, _window_neighbours(vectors, params))
        size = params.slice_articles
        graph = sp.block_diag(
            [
                _linkage_graph(
                    smoothed[start : start + size],
                    None,
                    time,
                    start,
                    params.slice_neighbours,
                    params,
                )
                for start in range(0, n, size)
            ],
            format="coo",
        )
    else:
        smoothed = smooth(vectors, params)
        graph = _linkage_graph(smoothed, dense, time, 0, params.graph_max_neighbours, params)
    labels = np.asarray(reviewed_linkage(n, graph.row, graph.col, graph.data, threshold, review))
    if sliced:
        labels = _merge_fragments(smoothed, labels, threshold, time, params, review)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(index)
    if stories_before is None or not (stories_before >= 0).any():
        return sorted(groups.values())
    if sliced:  # pairs across slices are not in the graph: sums of the smoothed vectors

        def pairwise(group: list[int], parts: np.ndarray) -> np.ndarray:
            rows = smoothed[group]
            own = np.asarray(rows.multiply(rows).sum(axis=1))  # a member's 1 to itself
            total: np.ndarray = np.asarray(rows @ (rows.T @ parts)) - own * parts
            return total

    else:
        similar = sp.csr_matrix(graph.tocsr() + graph.T.tocsr())

        def pairwise(group: list[int], parts: np.ndarray) -> np.ndarray:
            return np.asarray(similar[group][:, group] @ parts)

    margin = params.sticky_margin * threshold
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
    k: int,
    params: ClusterParams,
) -> sp.coo_matrix:
    """The linkage graph of rows ``offset`` on, up to ``k`` neighbours per row: each pair once
    (upper triangle), discounted by the hours between the two."""
    graph = top_neighbours(smoothed, k, params.graph_min_sim, params, dense)
    graph = sp.triu(graph.maximum(graph.T), k=1).tocoo()
    if time is not None:
        hours, discount = time
        gaps = np.abs(hours[graph.row + offset] - hours[graph.col + offset])
        graph.data *= time_factors(discount, gaps)
    return graph


def _window_neighbours(vectors: sp.csr_matrix, params: ClusterParams) -> sp.csr_matrix:
    """The smoothing neighbours of a window past ``params.exact_max_articles``: the closest of
    those found exactly within each time slice and of those sharing a rare feature anywhere in
    the window (a story that trickles in all day has members in many slices)."""
    n = vectors.shape[0]
    k, min_sim, size = params.smooth_neighbours, params.smooth_min_sim, params.slice_articles
    within = sp.block_diag(
        [
            top_neighbours(vectors[start : start + size], k, min_sim, params)
            for start in range(0, n, size)
        ],
        format="csr",
    )
    across = candidate_neighbours(vectors, k, min_sim, params.candidate_max_df)
    both = within.maximum(across).tocoo()
    return top_per_row(n, both.row, both.col, both.data, k)


def _merge_fragments(
    smoothed: sp.csr_matrix,
    labels: np.ndarray,
    threshold: float,
    time: tuple[np.ndarray, TimeDiscount] | None,
    params: ClusterParams,
    review: Review | None = None,
) -> np.ndarray:
    """Labels after merging the groups of the time slices by average linkage on their members'
    average similarity: the dot product of the groups' mean vectors (every pair of members
    counted, whatever slice they are in). A story's fragments from different hours meet here,
    and so do the articles linked to it only by its frequent words."""
    n = smoothed.shape[0]
    _, label, size = np.unique(labels, return_inverse=True, return_counts=True)
    groups = size.size
    members = sp.csr_matrix((1 / size[label], (label, np.arange(n))), shape=(groups, n))
    means = keep_largest(sp.csr_matrix(members @ smoothed), params.mean_max_terms)
    if time is not None:  # a group's time: its members' mean
        hours, discount = time
        time = (np.bincount(label, weights=hours, minlength=groups) / size, discount)
    graph = _linkage_graph(means, None, time, 0, params.graph_max_neighbours, params)
    rows_of = [p.tolist() for p in np.split(np.argsort(label, kind="stable"), np.cumsum(size)[:-1])]
    merged = reviewed_linkage(
        groups, graph.row, graph.col, graph.data, threshold, review, size, rows_of
    )
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


def reviewed_linkage(
    n: int,
    rows: np.ndarray,
    cols: np.ndarray,
    sims: np.ndarray,
    threshold: float,
    review: Review | None,
    sizes: np.ndarray | None = None,
    members: Sequence[Sequence[int]] | None = None,
) -> list[int]:
    """average_linkage whose merges ``review`` may veto.

    The pairs of rows a veto names are kept apart by strongly negative links (no group holding
    both rows of one can reach the threshold), and the linkage runs again: the two
    may now join others, and those merges are reviewed in turn, until a run brings no new veto
    (at most REVIEW_ROUNDS reruns; ``review`` is asked again about merges it saw before, so it
    should remember its answers). ``members``: the rows each item stands for (items are rows
    without it).
    """
    item_of = np.arange(n)
    if members is not None:  # row -> the item standing for it
        item_of = np.zeros(sum(len(m) for m in members), dtype=np.int64)
        for item, rows_of_item in enumerate(members):
            item_of[list(rows_of_item)] = item
    veto_rows: list[int] = []
    veto_cols: list[int] = []
    for rerun in range(REVIEW_ROUNDS + 1):
        log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        labels = average_linkage(
            n,
            np.concatenate([rows, np.array(veto_rows, dtype=np.int64)]),
            np.concatenate([cols, np.array(veto_cols, dtype=np.int64)]),
            np.concatenate([sims, np.full(len(veto_rows), _VETO)]),
            threshold,
            sizes,
            log if review is not None else None,
        )
        if review is None or rerun == REVIEW_ROUNDS:
            return labels
        vetoed = [pair for apart in review(_replay(log, members)) for pair in apart]
        if not vetoed:
            return labels
        veto_rows.extend(item_of[a] for a, _ in vetoed)
        veto_cols.extend(item_of[b] for _, b in vetoed)
    return labels


def _replay(
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    members: Sequence[Sequence[int]] | None,
) -> list[Merge]:
    """The merges of an average_linkage log, in rows."""
    groups: dict[int, list[int]] = {}
    merges: list[Merge] = []
    for kept, gone, similarity in log:
        for a, b, sim in zip(kept.tolist(), gone.tolist(), similarity.tolist(), strict=True):
            left, right = groups.pop(a, [a]), groups.pop(b, [b])
            groups[a] = left + right
            if members is not None:
                left = [r for item in left for r in members[item]]
                right = [r for item in right for r in members[item]]
            merges.append(Merge(tuple(sorted(left)), tuple(sorted(right)), sim))
    return merges


def average_linkage(
    n: int,
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    sims: Sequence[float] | np.ndarray,
    threshold: float,
    sizes: np.ndarray | None = None,
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> list[int]:
    """Cluster label per item: merge the two groups of highest average similarity while it is
    at least ``threshold``; pairs absent from the sparse graph count as similarity 0 (each pair
    given once, row != col). With ``sizes`` the items are groups already, of that many members
    each, and ``sims`` the average similarity between their members. With ``log``, each round
    appends its merges: (kept group, absorbed group, their average similarity), the groups
    named by one of their items.

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
        if log is not None:
            log.append((keep, gone, best[keep]))
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
