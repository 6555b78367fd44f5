"""Step 4 as the pipeline runs it: every photo's top-k list, computed in full or updated from the previous run.

With αQE over n neighbours (`query_expansion`) there are two passes. The
first finds each photo's n nearest by the model's own descriptors; the
second ranks by the expanded descriptors those lists make. An update redoes
each pass at the cost of what changed in it:

1. First pass: dirty rows are the new and changed photos (`neighbour_update`).
2. A photo's expanded descriptor is a function of its own descriptor and its
   first-pass list (ids and scores). So it changes exactly for the new and
   changed photos and for the photos whose first-pass list changed: those
   are the second pass's dirty rows. Everyone else's is the same as last run.
3. Second pass: an update over the expanded descriptors with those dirty rows.

Every expanded descriptor is derived again (N·n·d work, no products of
pairs), so both passes see what a full computation would. The first-pass
lists are stored in the index for the next update (`Index.expansion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precompute.neighbours.exact import similarities_computed
from precompute.neighbours.query_expansion import expand
from precompute.neighbours.search import resolve_method, top_k
from precompute.neighbours.update import PreviousPass, update_top_k



@dataclass
class PreviousLists:
    """The previous run's lists, in its row order, and where its rows went in this run."""

    new_row: np.ndarray  # old row -> this run's row; -1 where the photo was removed or changed
    neighbours: np.ndarray
    scores: np.ndarray
    expansion: tuple[np.ndarray, np.ndarray] | None  # the first pass's (neighbours, scores) with αQE
    query_expansion: int
    method: str  # "exact", or "approx" if any list in them was found approximately


@dataclass
class NeighbourLists:
    neighbours: np.ndarray
    scores: np.ndarray
    expansion: tuple[np.ndarray, np.ndarray] | None
    method: str  # as PreviousLists.method, for the index to record
    similarities: int  # pairs multiplied in this run
    updated: bool  # the previous run's lists were brought up to date, not computed again
    searched: int  # rows multiplied against every row (in the last pass)


def neighbour_lists(
    embeddings: np.ndarray, k: int, query_expansion: int, method: str, previous: PreviousLists | None = None
) -> NeighbourLists:
    """Each photo's top-k by the descriptors αQE makes (or the model's own with 0), updated when possible."""
    started = similarities_computed()
    chosen = resolve_method(method, len(embeddings))
    if _can_update(previous, embeddings, k, query_expansion, chosen):
        lists = _update(embeddings, k, query_expansion, previous)
    else:
        lists = _compute(embeddings, k, query_expansion, chosen)
    lists.similarities = similarities_computed() - started
    return lists


def _compute(embeddings: np.ndarray, k: int, n: int, method: str) -> NeighbourLists:
    expansion = None
    ranked_by = embeddings
    if n:
        expansion = top_k(embeddings, n, method)
        ranked_by = expand(embeddings, *expansion, n)
    neighbours, scores = top_k(ranked_by, k, method)
    return NeighbourLists(neighbours, scores, expansion, method, 0, updated=False, searched=len(embeddings))


def _can_update(previous: PreviousLists | None, embeddings: np.ndarray, k: int, n: int, method: str) -> bool:
    """Whether the previous lists are complete, of the same kind, and the change small enough to pay off."""
    if previous is None or previous.query_expansion != n or (method == "exact" and previous.method != "exact"):
        return False
    old_rows = len(previous.new_row)
    if old_rows <= max(k, n) or len(embeddings) <= max(k, n) or previous.neighbours.shape != (old_rows, k):
        return False  # lists shorter than k (a tiny collection) or of another k
    if n and (previous.expansion is None or previous.expansion[0].shape != (old_rows, n)):
        return False
    return _update_pays(len(embeddings), len(embeddings) - np.count_nonzero(previous.new_row >= 0), method)


def _update_pays(n: int, dirty: int, method: str) -> bool:
    """An update multiplies at least dirty × N pairs: less than a full computation's N²/2, or the IVF's share of it?"""
    if method == "exact":
        full = n * n / 2
    else:
        from precompute.neighbours.approximate import ivf_parameters

        parameters = ivf_parameters(n, 1)
        full = n * parameters.probes * n / parameters.lists
    return dirty * n < full


def _update(embeddings: np.ndarray, k: int, n: int, previous: PreviousLists) -> NeighbourLists:
    new_row = previous.new_row
    expansion = None
    ranked_by = embeddings
    if n:
        first = update_top_k(embeddings, n, PreviousPass(*previous.expansion, new_row))
        expansion = (first.neighbours, first.scores)
        ranked_by = expand(embeddings, first.neighbours, first.scores, n)
        new_row = _still_the_same(new_row, previous.expansion, expansion)
    second = update_top_k(ranked_by, k, PreviousPass(previous.neighbours, previous.scores, new_row))
    return NeighbourLists(
        second.neighbours, second.scores, expansion, previous.method, 0, updated=True,
        searched=second.dirty + second.searched_again,
    )


def _still_the_same(new_row: np.ndarray, old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """`new_row`, with -1 also for the photos whose first-pass list (ids or scores) changed."""
    kept = np.flatnonzero(new_row >= 0)
    rows = new_row[kept]
    same_ids = (new_row[old[0][kept]] == new[0][rows]).all(axis=1)
    same_scores = (old[1][kept] == new[1][rows]).all(axis=1)
    result = new_row.copy()
    result[kept[~(same_ids & same_scores)]] = -1
    return result
