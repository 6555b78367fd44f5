"""The measures of one index: holidays-dev AP per half, near-duplicate recall, category AP@10, and its lists against exact ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.index_file import Index
from precompute import rerank
from precompute.evidence import EvidenceFile
from precompute.neighbours.lists import neighbour_lists
from precompute.neighbours.query_expansion import expanded_descriptors
from tools.evaluate.categories import OTHER, wnid_of
from tools.evaluate.metrics import Reorder, average_precisions, recall_of_originals
from tools.evaluate.protocol import split_by_scene

CATEGORY_K = 10


def holidays_scores(index: Index, evidence: EvidenceFile | None = None) -> dict[str, np.ndarray]:
    """Per-query AP on each half, each half ranked as a collection of its own (αQE and re-ranking within it too)."""
    ids = np.array([int(Path(p["path"]).stem) for p in index.photos])
    scenes = ids // 100
    scores = {}
    for half, rows in split_by_scene(scenes).items():
        ranked_by = expanded_descriptors(index.embeddings[rows], index.model.query_expansion)
        queries = np.flatnonzero(ids[rows] % 100 == 0)
        scores[half] = average_precisions(ranked_by, scenes[rows], queries, reorder=reranking(index, evidence, rows))
    return scores


def near_duplicate_recall(index: Index, made: dict[str, tuple[str, str]], evidence: EvidenceFile | None = None) -> tuple[float, float]:
    """Top-1 and top-10 recall of each copy's original, among the originals and all copies."""
    copy_rows, original_rows = _copy_and_original_rows(index, made)
    ranked_by = expanded_descriptors(index.embeddings, index.model.query_expansion)
    reorder = reranking(index, evidence, np.arange(len(ranked_by)))
    return recall_of_originals(ranked_by, copy_rows, original_rows, k=10, reorder=reorder)


def category_scores(index: Index, table: dict[str, tuple[str, str]], evidence: EvidenceFile | None = None) -> np.ndarray:
    """AP@10 of each original with a category, ranking the other originals only; same category = relevant."""
    rows = np.array([r for r, p in enumerate(index.photos) if p["path"].startswith("originals/")])
    names = [Path(index.photos[r]["path"]).name for r in rows]
    categories = np.array([table[wnid_of(name)][1] for name in names])
    ranked_by = expanded_descriptors(index.embeddings[rows], index.model.query_expansion)
    return average_precisions(ranked_by, categories, np.flatnonzero(categories != OTHER), k=CATEGORY_K,
                              reorder=reranking(index, evidence, rows))


def reranking(index: Index, evidence: EvidenceFile | None, rows: np.ndarray) -> Reorder | None:
    """The index's `--rerank` applied within a collection of `rows`: its first CANDIDATES (and, with SSCD, each
    query's nearest by SSCD in the collection) re-ranked, the rest in their order after them."""
    mode = index.model.rerank
    if mode == "off":
        return None
    if evidence is None:
        raise ValueError("an index built with --rerank is measured with its evidence file")
    keys = [evidence.sha1(int(row)) for row in rows]
    sscd = np.asarray(evidence.arrays["sscd"][rows], np.float32) if rerank.uses_sscd(mode) else None

    def reorder(queries: np.ndarray, order: np.ndarray, cosines: np.ndarray) -> np.ndarray:
        candidates, candidate_cosines = order[:, : rerank.CANDIDATES], cosines[:, : rerank.CANDIDATES]
        if sscd is not None:
            similarity = sscd[queries] @ sscd.T
            similarity[np.arange(len(queries)), queries] = -np.inf
            nearest = np.argsort(-similarity, axis=1, kind="stable")[:, : rerank.SSCD_CANDIDATES]
            every = np.full((len(queries), len(rows)), -1.0, np.float32)
            np.put_along_axis(every, order, cosines, axis=1)
            candidates, candidate_cosines = rerank.joined_candidates(candidates, candidate_cosines, nearest, every)
        head = rerank.rerank(candidates, candidate_cosines, keys, lambda local: evidence.features(int(rows[local])),
                             owners=queries, sscd=sscd, local=rerank.uses_local(mode))
        listed = [row[row >= 0] for row in head.neighbours]
        return np.array([np.concatenate([first, rest[~np.isin(rest, first)]]) for first, rest in zip(listed, order)])

    return reorder


def list_recall(index: Index) -> np.ndarray:
    """Per photo, the share of the exact pipeline's k neighbours that the index lists: 1.0 throughout for exact indexes.

    The exact lists go through the same step with `exact` (the same αQE, with
    exact first-pass lists), so only the search method differs.
    """
    listed = index.neighbours
    exact = neighbour_lists(np.asarray(index.embeddings), listed.shape[1], index.model.query_expansion, "exact").neighbours
    return np.array([len(set(a) & set(b)) / len(b) if len(b) else 1.0 for a, b in zip(listed.tolist(), exact.tolist())])


def listed_originals(index: Index, made: dict[str, tuple[str, str]]) -> tuple[float, float]:
    """Near-duplicate recall as a visitor sees it: is the original the copy's first listed photo, or among its list?"""
    copy_rows, original_rows = _copy_and_original_rows(index, made)
    listed = index.neighbours[copy_rows]
    return float(np.mean(listed[:, 0] == original_rows)), float(np.mean((listed == original_rows[:, None]).any(axis=1)))


def _copy_and_original_rows(index: Index, made: dict[str, tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    row = {p["path"]: r for r, p in enumerate(index.photos)}
    return (np.array([row[f"copies/{name}"] for name in made]),
            np.array([row[f"originals/{original}"] for original, _ in made.values()]))
