"""Step 4: each photo's top-k most similar photos, by cosine similarity.

Similarities are computed one tile at a time (a block of rows against a chunk
of columns) with numpy's BLAS matrix product into one reused buffer (numpy's
OpenBLAS ran 1.7x faster than torch's MKL on the AMD machines this was tuned
on); `torch.topk` keeps each tile's k best per row, and the candidates of a
row's tiles are merged. Memory stays bounded by the tile however large the collection: a
full N × N matrix is never built. This is as fast as faiss's exact
`IndexFlatIP` (see benchmarks/neighbours.py) without depending on it.
"""

from __future__ import annotations

import numpy as np
import torch

# A tile of 1024 × 16384 float32 similarities is 64 MiB. With fewer rows per
# block BLAS slows down (it re-reads every column once per block), narrower
# tiles cost about 10%, and a fresh tile per product instead of one reused
# buffer would cost a page fault per 4 KiB written, a third of the product's time.
_BLOCK_ROWS = 1024
_CHUNK_COLUMNS = 16384


def top_k_neighbours(
    embeddings: np.ndarray, k: int, block_rows: int | None = None, chunk_columns: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
    block_rows = min(n, block_rows or _BLOCK_ROWS)
    chunk_columns = min(n, chunk_columns or _CHUNK_COLUMNS)
    buffer = np.empty(block_rows * chunk_columns, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, block_rows):
            stop = min(n, start + block_rows)
            best_scores, best = _block_top_k(embeddings, start, stop, k, chunk_columns, buffer)
            order = np.lexsort((best, -best_scores), axis=1)  # ties in row order
            neighbours[start:stop] = np.take_along_axis(best, order, axis=1)
            scores[start:stop] = np.take_along_axis(best_scores, order, axis=1)
    return neighbours, scores


def _block_top_k(
    embeddings: np.ndarray, start: int, stop: int, k: int, chunk_columns: int, buffer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of rows start..stop, tile by tile: (scores, columns), best first."""
    n, rows = len(embeddings), stop - start
    block = embeddings[start:stop]
    candidate_scores, candidates = [], []
    for first in range(0, n, chunk_columns):
        last = min(n, first + chunk_columns)
        tile = np.matmul(block, embeddings[first:last].T, out=buffer[: rows * (last - first)].reshape(rows, last - first))
        own = np.arange(max(start, first), max(start, first, min(stop, last)))
        tile[own - start, own - first] = -np.inf  # a photo is not its own neighbour
        tile_scores, tile_columns = torch.topk(torch.from_numpy(tile), min(k, last - first), dim=1)
        candidate_scores.append(tile_scores)
        candidates.append(tile_columns + first)
    merged_scores, positions = torch.topk(torch.cat(candidate_scores, dim=1), k, dim=1)
    return merged_scores.numpy(), torch.gather(torch.cat(candidates, dim=1), 1, positions).numpy().astype(np.int32)
