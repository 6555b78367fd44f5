"""Step 4: each photo's top-k most similar photos, by cosine similarity.

Similarities are computed a block of rows at a time (block × N), and the k
best of each row are picked with `argpartition`, so memory stays bounded by
the block however large the collection. A full N × N matrix is never built.
"""

from __future__ import annotations

import numpy as np

_BLOCK_BYTES = 256 * 2**20  # memory for one block of similarities


def top_k_neighbours(embeddings: np.ndarray, k: int, block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For unit-length rows, return (neighbours int32 N×k, scores float32 N×k).

    Row i lists the other rows most similar to row i, best first; a row is
    never its own neighbour. With fewer than k + 1 rows, k shrinks to N - 1.
    Within the k, equal scores are listed in row order.
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    k = max(0, min(k, n - 1))
    neighbours = np.empty((n, k), dtype=np.int32)
    scores = np.empty((n, k), dtype=np.float32)
    if k == 0:
        return neighbours, scores
    if block_rows is None:
        block_rows = max(1, min(n, _BLOCK_BYTES // (4 * n)))
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        similarity = embeddings[start:stop] @ embeddings.T
        rows = np.arange(stop - start)
        similarity[rows, rows + start] = -np.inf  # a photo is not its own neighbour
        best = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(similarity, best, axis=1)
        order = np.lexsort((best, -best_scores), axis=1)
        neighbours[start:stop] = np.take_along_axis(best, order, axis=1)
        scores[start:stop] = np.take_along_axis(best_scores, order, axis=1)
    return neighbours, scores
