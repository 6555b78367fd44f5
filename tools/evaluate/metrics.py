"""Retrieval metrics computed from embeddings, with the query left out of its own ranking."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (query rows, each query's ranking of the other rows best first, their cosines) -> the rankings re-ordered
Reorder = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def average_precision(ranked_relevant: np.ndarray, total_relevant: int) -> float:
    """Non-interpolated AP of one ranking: `ranked_relevant[i]` says whether rank i is relevant."""
    if total_relevant == 0:
        return 0.0
    hits = np.cumsum(ranked_relevant)
    precision_at_hits = hits[ranked_relevant] / (np.flatnonzero(ranked_relevant) + 1)
    return float(precision_at_hits.sum() / total_relevant)


def rankings(embeddings: np.ndarray, queries: np.ndarray, reorder: Reorder | None = None) -> np.ndarray:
    """Each query's ranking of every other row (len(queries) × (N − 1)), by cosine, then re-ordered by `reorder`."""
    scores = embeddings[queries] @ embeddings.T
    scores[np.arange(len(queries)), queries] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, : len(embeddings) - 1]
    if reorder is not None:
        order = reorder(queries, order, np.take_along_axis(scores, order, axis=1))
    return order


def average_precisions(embeddings: np.ndarray, groups: np.ndarray, queries: np.ndarray, k: int | None = None,
                       reorder: Reorder | None = None) -> np.ndarray:
    """Each query's AP (row indices in `queries`), ranking every other row by cosine; same group = relevant.

    With `k`, AP@k: only the first k ranks count, and a query is divided by
    min(k, its number of relevant rows), so a perfect top k scores 1.
    `reorder` re-ranks each ranking (e.g. `--rerank`'s verification).
    """
    orders = rankings(embeddings, queries, reorder)
    aps = np.empty(len(queries))
    for row, query in enumerate(queries):
        order = orders[row]
        relevant = groups[order] == groups[query]
        total = int(relevant.sum())
        if k is not None:
            relevant, total = relevant[:k], min(total, k)
        aps[row] = average_precision(relevant, total)
    return aps


def mean_average_precision(embeddings: np.ndarray, groups: np.ndarray, queries: np.ndarray) -> float:
    """mAP over `queries` (row indices), ranking every other row by cosine; same group = relevant."""
    return float(np.mean(average_precisions(embeddings, groups, queries)))


def recall_of_originals(embeddings: np.ndarray, copies: np.ndarray, originals: np.ndarray, k: int,
                        reorder: Reorder | None = None) -> tuple[float, float]:
    """For each copy row, is its original row ranked first, and within the top k, among all other rows?"""
    if reorder is not None:
        rank = np.argmax(rankings(embeddings, copies, reorder) == originals[:, None], axis=1)
        return float(np.mean(rank == 0)), float(np.mean(rank < k))
    scores = embeddings[copies] @ embeddings.T
    scores[np.arange(len(copies)), copies] = -np.inf
    target = scores[np.arange(len(copies)), originals]
    rank = (scores > target[:, None]).sum(axis=1)  # how many rows beat the original
    return float(np.mean(rank == 0)), float(np.mean(rank < k))
