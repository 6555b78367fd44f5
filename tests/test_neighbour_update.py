"""Updating top-k lists at the cost of what changed: equal to a full computation, and cheap."""

from __future__ import annotations

import numpy as np
import pytest

from precompute.neighbours.exact import similarities_computed, top_k_neighbours
from precompute.neighbours.update import PreviousPass, update_top_k
from tests.test_neighbours import unit_rows


def edit(old: np.ndarray, removed: list[int], changed: list[int], added: int, seed: int = 1):
    """The collection after an update, in a new row order, and PreviousPass.new_row for it.

    New rows are interleaved with the old ones (as new paths sort among old ones).
    """
    rng = np.random.default_rng(seed)
    survivors = [row for row in range(len(old)) if row not in removed]
    fresh = unit_rows(added + len(changed), old.shape[1], seed=seed + 100)
    rows = [("old", row) for row in survivors] + [("new", i) for i in range(added)]
    rng.shuffle(rows[1:])  # keep one old row first; the rest in any order, relative order of old rows kept below
    old_positions = sorted(i for i, (kind, _) in enumerate(rows) if kind == "old")
    for position, row in zip(old_positions, survivors):
        rows[position] = ("old", row)
    embeddings = np.empty((len(rows), old.shape[1]), np.float32)
    new_row = np.full(len(old), -1, np.int64)
    changes = iter(fresh[added:])
    for position, (kind, row) in enumerate(rows):
        if kind == "new":
            embeddings[position] = fresh[row]
        elif row in changed:
            embeddings[position] = next(changes)
        else:
            embeddings[position] = old[row]
            new_row[row] = position
    return embeddings, new_row


@pytest.mark.parametrize(
    "removed, changed, added",
    [([], [], 7), ([3, 50, 51], [], 0), ([], [4, 90], 0), ([0, 10, 11, 12], [20, 21], 9), ([], [], 1)],
    ids=["adds", "removes", "changes", "all-three", "one-add"],
)
def test_update_equals_a_full_computation(removed, changed, added):
    old = unit_rows(200, 16)
    neighbours, scores = top_k_neighbours(old, 8)
    embeddings, new_row = edit(old, removed, changed, added)
    updated = update_top_k(embeddings, 8, PreviousPass(neighbours, scores, new_row), block=37)
    expected, expected_scores = top_k_neighbours(embeddings, 8)
    np.testing.assert_array_equal(updated.neighbours, expected)
    np.testing.assert_allclose(updated.scores, expected_scores, atol=1e-6)
    assert updated.dirty == added + len(changed)


def test_clusters_of_duplicates_and_removed_members():
    """Exact duplicates tie; removing some of them leaves rows short, which are searched again.

    With more ties than places, which of the tied photos are listed is not
    defined (torch.topk picks them in a full computation too): the scores must
    match, and every listed photo must really have its listed score.
    """
    grid = np.array([[2, 1, 0, 0], [0, 2, 1, 0], [1, 0, 0, 2], [0, 0, 2, 1]], dtype=np.float32) / np.sqrt(5)
    old = np.repeat(grid, 12, axis=0)
    neighbours, scores = top_k_neighbours(old, 5)
    embeddings, new_row = edit(old, removed=[0, 1, 2, 13], changed=[30], added=3)
    updated = update_top_k(embeddings, 5, PreviousPass(neighbours, scores, new_row), block=8)
    _, expected_scores = top_k_neighbours(embeddings, 5)
    np.testing.assert_allclose(updated.scores, expected_scores, atol=1e-6)
    true_scores = np.einsum("nd,nkd->nk", embeddings, embeddings[updated.neighbours])
    np.testing.assert_allclose(updated.scores, true_scores, atol=1e-6)
    assert not (updated.neighbours == np.arange(len(embeddings))[:, None]).any()
    assert all(len(set(row)) == 5 for row in updated.neighbours.tolist())
    assert updated.searched_again > 0


def test_an_update_computes_only_the_changed_rows_against_everything():
    """Adding 1% multiplies those rows by all N, not N² / 2: a regression to all-pairs fails here."""
    old = unit_rows(3000, 16)
    neighbours, scores = top_k_neighbours(old, 10)
    embeddings, new_row = edit(old, removed=[], changed=[], added=30)
    before = similarities_computed()
    updated = update_top_k(embeddings, 10, PreviousPass(neighbours, scores, new_row))
    computed = similarities_computed() - before
    n = len(embeddings)
    assert computed == 30 * n + updated.searched_again * n
    assert computed < 0.03 * n * n / 2, computed
    np.testing.assert_array_equal(updated.neighbours, top_k_neighbours(embeddings, 10)[0])
