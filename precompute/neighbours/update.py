"""Step 4 again, for an update: bring the previous run's top-k lists up to date at the cost of what changed.

A row is *dirty* when its descriptor is new or differs from the previous
run's (a new or changed photo). Only dirty rows are multiplied against every
row. Every other row starts from its previous list, minus members that were
removed or changed, and is offered the dirty rows' scores that beat its k-th
best, from the same products (similarity is symmetric).

That gives a clean row its exact new list whenever the members it kept plus
the dirty rows it was offered fill all k places ahead of its previous k-th
best: every photo it did not list before scored no better than that. A row
left short, because it lost members and nothing new beat them, is searched
again against every row. In exact mode the result equals a full computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from precompute.neighbours.exact import RunningBest, row_tiles, top_k_of_rows

_BLOCK = 4096


@dataclass
class PreviousPass:
    """One pass's lists from the previous run, and where its rows went."""

    neighbours: np.ndarray  # old rows × k, old row numbers
    scores: np.ndarray
    new_row: np.ndarray  # old row -> this run's row; -1 where the photo was removed or its descriptor changed


@dataclass
class UpdatedPass:
    neighbours: np.ndarray
    scores: np.ndarray
    dirty: int  # rows multiplied against everything because they are new or changed
    searched_again: int  # clean rows multiplied against everything because they lost members


def update_top_k(embeddings: np.ndarray, k: int, previous: PreviousPass, block: int = _BLOCK) -> UpdatedPass:
    """This run's top-k lists, as `top_k_neighbours` would return them, from the previous run's.

    The previous lists must be k wide and complete (the previous run had more than k rows).
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    old_of_new = np.full(n, -1, np.int64)
    kept = previous.new_row >= 0
    old_of_new[previous.new_row[kept]] = np.flatnonzero(kept)
    dirty = old_of_new < 0
    clean = np.flatnonzero(~dirty)
    best = RunningBest(n, k)
    bound_score, bound_id = _start_from_previous(best, clean, old_of_new[clean], previous)
    best.scores[dirty] = np.inf  # dirty rows get their lists from their own pass below, not as columns
    changed = np.flatnonzero(dirty)
    changed_best = RunningBest(len(changed), k)
    survivors = np.empty(block * block, dtype=bool)
    for first, start, tile in row_tiles(embeddings, changed, block):
        changed_best.offer(tile, first, start, survivors)
        best.offer(tile, 0, start, survivors, to_columns=True, row_ids=changed[first : first + block])
    best.ids[changed], best.scores[changed] = changed_best.ids, changed_best.scores
    ahead = (best.scores[clean] > bound_score[:, None]) | (
        (bound_id[:, None] >= 0) & (best.scores[clean] == bound_score[:, None]) & (best.ids[clean] <= bound_id[:, None])
    )
    short = clean[~ahead.all(axis=1)]
    if len(short):
        best.ids[short], best.scores[short] = top_k_of_rows(embeddings, short, k, block)
    return UpdatedPass(best.ids, best.scores, dirty=len(changed), searched_again=len(short))


def _start_from_previous(
    best: RunningBest, clean: np.ndarray, old_rows: np.ndarray, previous: PreviousPass
) -> tuple[np.ndarray, np.ndarray]:
    """Put each clean row's surviving members into `best`; return its previous k-th (score, this run's id).

    The id is -1 when that k-th member is gone: then only scores strictly above
    the bound are known to beat every photo the row did not list.
    """
    members = previous.new_row[previous.neighbours[old_rows]]
    scores = previous.scores[old_rows]
    gone = members < 0
    order = np.argsort(gone, axis=1, kind="stable")  # survivors first, in their previous order
    members = np.take_along_axis(members, order, axis=1)
    scores = np.where(np.take_along_axis(gone, order, axis=1), -np.inf, np.take_along_axis(scores, order, axis=1))
    best.ids[clean] = np.where(np.isfinite(scores), members, len(best.ids)).astype(np.int32)
    best.scores[clean] = scores
    return previous.scores[old_rows, -1], previous.new_row[previous.neighbours[old_rows, -1]]
