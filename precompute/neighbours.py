"""Step 4: each photo's top-k most similar photos, by cosine similarity.

Similarities are computed a block of rows at a time (block × N) with one
BLAS matrix product, and the k best of each row are picked with `torch.topk`,
so memory stays bounded by the block however large the collection. A full
N × N matrix is never built. This is as fast as faiss's exact `IndexFlatIP`
(see benchmarks/neighbours.py) without depending on it.
"""

from __future__ import annotations

import numpy as np
import torch

# Memory for one block of similarities (rows × N float32), and the row count
# below which BLAS and topk lose speed to per-block overheads.
_BLOCK_BYTES = 32 * 2**20
_MIN_BLOCK_ROWS = 256


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
    block_rows = block_rows or max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (4 * n))
    everything = torch.from_numpy(embeddings)
    with torch.inference_mode():
        for start in range(0, n, block_rows):
            stop = min(n, start + block_rows)
            similarity = torch.mm(everything[start:stop], everything.T)
            rows = torch.arange(stop - start)
            similarity[rows, rows + start] = -torch.inf  # a photo is not its own neighbour
            best_scores, best = torch.topk(similarity, k, dim=1)
            best_scores, best = best_scores.numpy(), best.numpy()
            order = np.lexsort((best, -best_scores), axis=1)  # ties in row order
            neighbours[start:stop] = np.take_along_axis(best, order, axis=1)
            scores[start:stop] = np.take_along_axis(best_scores, order, axis=1)
    return neighbours, scores
