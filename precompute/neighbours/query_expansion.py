"""α-weighted query expansion on the neighbour lists (αQE, Radenović et al. 2018).

Each descriptor is replaced by the similarity-weighted sum of itself and its
n nearest neighbours. Photos of one scene pull each other closer, so the
second pass of neighbours finds group-mates the first pass ranked lower.
The index keeps the model's own descriptors; the expanded ones only decide
the neighbour lists and their scores, and are derived again when needed.
"""

from __future__ import annotations

import numpy as np

from precompute.neighbours.search import top_k


ALPHA = 3.0
_BLOCK_ROWS = 4096


def expanded_descriptors(embeddings: np.ndarray, n: int, method: str = "exact") -> np.ndarray:
    """The descriptors neighbours are ranked by: the model's own, or with αQE over n neighbours found by `method`."""
    if n == 0:
        return embeddings
    neighbours, scores = top_k(embeddings, n, method)
    return expand(embeddings, neighbours, scores, n)


def expand(embeddings: np.ndarray, neighbours: np.ndarray, scores: np.ndarray, n: int, alpha: float = ALPHA) -> np.ndarray:
    """Unit-length expanded descriptors; `neighbours`/`scores` are the first pass, best first."""
    n = min(n, neighbours.shape[1])
    expanded = np.empty_like(embeddings)
    for start in range(0, len(embeddings), _BLOCK_ROWS):
        stop = min(len(embeddings), start + _BLOCK_ROWS)
        weights = np.clip(scores[start:stop, :n], 0.0, None) ** alpha
        mixed = embeddings[start:stop] + np.einsum("bn,bnd->bd", weights, embeddings[neighbours[start:stop, :n]])
        expanded[start:stop] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return expanded
