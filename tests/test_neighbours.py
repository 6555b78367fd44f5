import numpy as np
import pytest

from precompute.neighbours.exact import top_k_neighbours


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    similarity = embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


@pytest.mark.parametrize("block", [None, 2, 7, 64, 1000])
def test_blockwise_top_k_matches_brute_force(block):
    embeddings = unit_rows(300, 32)
    neighbours, scores = top_k_neighbours(embeddings, k=10, block=block)
    expected, expected_scores = brute_force(embeddings, 10)
    assert neighbours.dtype == np.int32 and scores.dtype == np.float32
    assert neighbours.shape == scores.shape == (300, 10)
    np.testing.assert_array_equal(neighbours, expected)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_a_photo_is_never_its_own_neighbour_even_with_duplicates():
    embeddings = np.repeat(unit_rows(5, 8), 2, axis=0)  # every photo twice
    neighbours, scores = top_k_neighbours(embeddings, k=3)
    assert not (neighbours == np.arange(10)[:, None]).any()
    twin = np.arange(10) ^ 1  # rows 2i and 2i+1 are identical
    np.testing.assert_array_equal(neighbours[:, 0], twin)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-6)


def test_scores_are_sorted_best_first():
    _, scores = top_k_neighbours(unit_rows(200, 16, seed=3), k=15, block=13)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_k_shrinks_for_small_collections():
    neighbours, scores = top_k_neighbours(unit_rows(4, 8), k=10)
    assert neighbours.shape == (4, 3)
    assert sorted(neighbours[0].tolist()) == [1, 2, 3]
    single, single_scores = top_k_neighbours(unit_rows(1, 8), k=10)
    assert single.shape == single_scores.shape == (1, 0)


def test_many_identical_photos_across_blocks():
    """Ties fill whole tiles, so every tile takes the torch.topk path; the result is still exact.

    Coordinates on a coarse grid make every dot product exact, so the ties are real ties.
    """
    grid = np.array([[2, 1, 0, 0], [0, 2, 1, 0], [1, 0, 0, 2]], dtype=np.float32) / 4
    embeddings = np.repeat(grid, 40, axis=0)  # three photos, forty copies each
    neighbours, scores = top_k_neighbours(embeddings, k=10, block=8)
    expected, expected_scores = brute_force(embeddings, 10)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    np.testing.assert_array_equal(neighbours, expected)  # ties in row order, the lowest rows first
    assert not (neighbours == np.arange(120)[:, None]).any()


def test_tiles_full_of_ties_are_cut_with_topk():
    """100 copies of one photo: every entry of every tile ties with the k-th best, too many to merge one by one."""
    embeddings = np.repeat(np.array([[2, 1, 0, 0]], dtype=np.float32) / 4, 100, axis=0)
    neighbours, scores = top_k_neighbours(embeddings, k=3, block=32)
    np.testing.assert_array_equal(scores, np.full((100, 3), 5 / 16, dtype=np.float32))
    assert not (neighbours == np.arange(100)[:, None]).any()
    assert ((neighbours >= 0) & (neighbours < 100)).all()
    assert all(len(set(row)) == 3 for row in neighbours.tolist())
