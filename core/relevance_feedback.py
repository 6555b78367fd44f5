""""More like these, less like that": one query descriptor from photos a person picked and rejected (Rocchio).

The query is the mean of the liked photos' embeddings minus UNLIKE_WEIGHT
times the mean of the rejected ones, made unit length, and every photo is
scored by its cosine with it: one matrix-vector product over the stored
(memory-mapped) embeddings, so the web app answers it without torch. With one
liked photo and nothing rejected the query is that photo's embedding, and the
scores are the ones its stored similar list was ranked by (before αQE).

UNLIKE_WEIGHT is Rocchio's customary ratio of the negative to the positive
weight (0.15 / 0.75). On holidays-dev (`python -m tools.evaluate.feedback`,
docs/quality.md) it neither helps nor hurts against merely removing the
rejected photo, on either half; weights from 0.75 up hurt. It is what makes
"not like this" push the rejected photo's look-alikes down too.
numpy only: the web app and the evaluation share this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UNLIKE_WEIGHT = 0.25


def feedback_query(
    embeddings: np.ndarray, liked: Sequence[int], unliked: Sequence[int] = (), unlike_weight: float = UNLIKE_WEIGHT
) -> np.ndarray:
    """The unit-length query for these rows of `embeddings`; `liked` must not be empty.

    Should the rejected photos cancel the liked ones (a zero query), the
    liked mean alone is the query.
    """
    query = embeddings[np.asarray(liked, dtype=np.intp)].astype(np.float32).mean(axis=0)
    if len(unliked):
        pushed = query - np.float32(unlike_weight) * embeddings[np.asarray(unliked, dtype=np.intp)].astype(np.float32).mean(axis=0)
        if np.linalg.norm(pushed) > 1e-6:
            query = pushed
    norm = np.linalg.norm(query)
    return query / norm if norm > 0 else query


def best_rows(embeddings: np.ndarray, query: np.ndarray, k: int, exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the k highest cosines with `query`, best first (ties by row), and those cosines; `exclude` never ranks.

    One matrix-vector product and an argpartition: no sort of the whole collection.
    """
    scores = np.asarray(embeddings @ query.astype(np.float32, copy=False))
    excluded = np.unique(np.asarray(exclude, dtype=np.intp))  # a whole folder, for folder scope
    scores[excluded] = -np.inf
    k = max(0, min(k, len(scores) - len(excluded)))
    if k == 0:
        return np.empty(0, np.intp), np.empty(0, np.float32)
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.lexsort((best, -scores[best]))]
    return best, scores[best]
