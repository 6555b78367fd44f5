"""The three measures of one index: holidays-dev AP per half, near-duplicate recall, category AP@10."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from precompute.evaluate.categories import OTHER, wnid_of
from precompute.evaluate.metrics import average_precisions, recall_of_originals
from precompute.evaluate.protocol import split_by_scene
from precompute.query_expansion import expanded_descriptors

CATEGORY_K = 10


def holidays_scores(index: dict) -> dict[str, np.ndarray]:
    """Per-query AP on each half, each half ranked as a collection of its own (αQE within it too)."""
    ids = np.array([int(Path(p["path"]).stem) for p in index["photos"]])
    scenes = ids // 100
    scores = {}
    for half, rows in split_by_scene(scenes).items():
        ranked_by = expanded_descriptors(index["embeddings"][rows], index["model"]["query_expansion"])
        queries = np.flatnonzero(ids[rows] % 100 == 0)
        scores[half] = average_precisions(ranked_by, scenes[rows], queries)
    return scores


def near_duplicate_recall(index: dict, made: dict[str, tuple[str, str]]) -> tuple[float, float]:
    """Top-1 and top-10 recall of each copy's original, among the originals and all copies."""
    row = {p["path"]: r for r, p in enumerate(index["photos"])}
    copy_rows = np.array([row[f"copies/{name}"] for name in made])
    original_rows = np.array([row[f"originals/{original}"] for original, _ in made.values()])
    ranked_by = expanded_descriptors(index["embeddings"], index["model"]["query_expansion"])
    return recall_of_originals(ranked_by, copy_rows, original_rows, k=10)


def category_scores(index: dict, table: dict[str, tuple[str, str]]) -> np.ndarray:
    """AP@10 of each original with a category, ranking the other originals only; same category = relevant."""
    rows = np.array([r for r, p in enumerate(index["photos"]) if p["path"].startswith("originals/")])
    names = [Path(index["photos"][r]["path"]).name for r in rows]
    categories = np.array([table[wnid_of(name)][1] for name in names])
    ranked_by = expanded_descriptors(index["embeddings"][rows], index["model"]["query_expansion"])
    return average_precisions(ranked_by, categories, np.flatnonzero(categories != OTHER), k=CATEGORY_K)
