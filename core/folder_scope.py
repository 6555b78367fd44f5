"""A photo's similar list limited to its own folder or to the other folders (`?in=folder|others`).

Think of a shop whose folders are its categories: "more sofas" is `in=folder`,
"what goes with this sofa" is `in=others`. The stored neighbours are filtered
first; when they leave fewer than k (most of a sofa's look-alikes are other
sofas, so `in=others` often does), the list is ranked again from the stored
embeddings: one matrix-vector product over the folder's photos (`folder`) or
over every photo (`others`, which reads all the embeddings: about 5 GB at a
million 1280-d photos, as search by photo does), with numpy, no torch. Such a
list ranks by the plain descriptors, where the stored lists may have been
ranked after query expansion. An index may carry no embeddings
(zero-width ones): then the list is what the stored neighbours hold, which may
be fewer than k or none. An index built with `--rerank` stores lists re-ranked
by local-feature verification, with the pairs verified marked (`verified`);
a list ranked again from the embeddings is ranked by appearance alone, and
says so (`reranked` False).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.folders import Folders
from core.relevance_feedback import best_rows

SCOPES = ("all", "folder", "others")  # the photo page's `in` argument; "all" is the default


@dataclass(frozen=True)
class ScopedList:
    rows: list[int]
    scores: list[float]
    complete: bool  # False: fewer than k, because neither the stored lists nor embeddings could give more
    same_scene: list[bool] = field(default_factory=list)  # per listed photo: verified by local features (else empty)
    reranked: bool = False  # the order and scores are the stored, re-ranked ones (not the embeddings' alone)


def scoped_similar(
    row: int, scope: str, folders: Folders, neighbours: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None,
    verified: np.ndarray | None = None,
) -> ScopedList:
    """Photo `row`'s k most similar photos within `scope`, best first; `verified`: the index's, when it re-ranked."""
    stored, stored_scores = neighbours[row], scores[row]
    marks = verified[row] if verified is not None else np.zeros(len(stored), bool)
    reranked = verified is not None
    if scope == "all":
        return ScopedList(stored.tolist(), stored_scores.tolist(), True, marks.tolist(), reranked)
    k = neighbours.shape[1]
    folder = folders.of_row[row]
    same = folders.of_row[stored] == folder
    keep = same if scope == "folder" else ~same
    in_folder = folders.rows(folder)
    available = len(in_folder) - 1 if scope == "folder" else len(folders.of_row) - len(in_folder)
    wanted = min(k, available)
    if keep.sum() >= wanted:
        return ScopedList(stored[keep][:wanted].tolist(), stored_scores[keep][:wanted].tolist(), True,
                          marks[keep][:wanted].tolist(), reranked)
    if embeddings is None or embeddings.shape[1] == 0:
        return ScopedList(stored[keep].tolist(), stored_scores[keep].tolist(), False, marks[keep].tolist(), reranked)
    query = np.asarray(embeddings[row])
    if scope == "folder":
        candidates = in_folder[in_folder != row]
        best, similarity = best_rows(np.asarray(embeddings[candidates]), query, wanted)
        best = candidates[best]
    else:
        best, similarity = best_rows(embeddings, query, wanted, exclude=in_folder)
    return ScopedList(best.tolist(), similarity.tolist(), True)
