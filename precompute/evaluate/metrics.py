"""Retrieval metrics computed from embeddings, with the query left out of its own ranking."""

from __future__ import annotations

import numpy as np


def average_precision(ranked_relevant: np.ndarray, total_relevant: int) -> float:
    """Non-interpolated AP of one ranking: `ranked_relevant[i]` says whether rank i is relevant."""
    if total_relevant == 0:
        return 0.0
    hits = np.cumsum(ranked_relevant)
    precision_at_hits = hits[ranked_relevant] / (np.flatnonzero(ranked_relevant) + 1)
    return float(precision_at_hits.sum() / total_relevant)


def mean_average_precision(embeddings: np.ndarray, groups: np.ndarray, queries: np.ndarray) -> float:
    """mAP over `queries` (row indices), ranking every other row by cosine; same group = relevant."""
    scores = embeddings[queries] @ embeddings.T
    aps = []
    for row, query in enumerate(queries):
        order = np.argsort(-scores[row], kind="stable")
        order = order[order != query]
        relevant = groups[order] == groups[query]
        aps.append(average_precision(relevant, int(relevant.sum())))
    return float(np.mean(aps))


def recall_of_originals(embeddings: np.ndarray, copies: np.ndarray, originals: np.ndarray, k: int) -> tuple[float, float]:
    """For each copy row, is its original row ranked first, and within the top k, among all other rows?"""
    scores = embeddings[copies] @ embeddings.T
    scores[np.arange(len(copies)), copies] = -np.inf
    target = scores[np.arange(len(copies)), originals]
    rank = (scores > target[:, None]).sum(axis=1)  # how many rows beat the original
    return float(np.mean(rank == 0)), float(np.mean(rank < k))
