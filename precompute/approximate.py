"""Step 4 for large collections: approximate top-k neighbours with an inverted file (IVF).

faiss's k-means splits the collection into `lists` clusters (the inverted
lists). Each photo is stored in the list of its nearest centroid and is
compared only with the photos of its `probes` nearest lists, as faiss's
`IndexIVFFlat` with `nprobe` does. Instead of faiss's one-query-at-a-time
scan, the search runs list by list: every photo that probes list `a` is
multiplied against list `a`'s members in one BLAS product, which is several
times faster on the same candidates (benchmarks/README.md).

The scores are the exact float32 cosines of the candidates found, and the
format is exact's: int32 ids and float32 scores, best first, equal scores in
row order, a photo never its own neighbour. A row that its probes give fewer
than k candidates (tiny or lopsided lists) is searched exactly instead.

Memory beyond the embeddings: the partial lists, N × probes × k × 8 bytes
(640 MB at 1M photos), the probe table (N × probes × 4 bytes), the centroids,
and one product tile of at most 64 MiB with its gathered rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from precompute.neighbours import count_similarities, top_k_of_rows

# The rule for the parameters; docs/quality.md has the recall it gives.
_LISTS_PER_SQRT_N = 2  # lists = 2·√N: list size √N / 2 (500 at 1M photos)
_PROBES = 16
_TRAINING_PER_LIST = 32  # k-means sample size per centroid (faiss warns below 39, harmlessly)
_KMEANS_ITERATIONS = 10
_TILE_ELEMENTS = 16 * 2**20  # 64 MiB of float32
_SEED = 1234


@dataclass(frozen=True)
class IvfParameters:
    """How the collection is split and searched: chosen from its size and dimension by `ivf_parameters`."""

    lists: int
    probes: int
    training_points: int
    rows_per_tile: int  # of one list's probing photos, so that a tile stays within _TILE_ELEMENTS


def ivf_parameters(n: int, d: int) -> IvfParameters:
    """lists = 2·√N (at least 1), probes = min(16, lists), k-means on 32 photos per list.

    The work is N · probes · (N / lists) products of length d: it grows as N^1.5
    where exact grows as N². d sets only how many gathered rows fit in a tile.
    """
    lists = max(1, round(_LISTS_PER_SQRT_N * math.sqrt(n)))
    list_size = max(1, n // lists)
    return IvfParameters(
        lists=lists,
        probes=min(_PROBES, lists),
        training_points=min(n, _TRAINING_PER_LIST * lists),
        rows_per_tile=max(1, min(_TILE_ELEMENTS // (4 * list_size), _TILE_ELEMENTS // d)),
    )


def approximate_top_k(
    embeddings: np.ndarray, k: int, parameters: IvfParameters | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For unit-length rows, (neighbours int32 N×k, scores float32 N×k), as `top_k_neighbours` returns them."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = embeddings.shape
    k = max(0, min(k, n - 1))
    if k == 0:
        return np.zeros((n, 0), np.int32), np.zeros((n, 0), np.float32)
    parameters = parameters or ivf_parameters(n, d)
    centroids = _train(embeddings, parameters)
    probes = _probes(embeddings, centroids, parameters.probes)
    partial_scores, partial_ids = _search_lists(embeddings, probes, k, parameters.rows_per_tile)
    neighbours, scores = _best_of(partial_scores, partial_ids, k)
    short = np.flatnonzero(neighbours[:, -1] == n)  # rows whose probes held fewer than k other photos
    if len(short):
        neighbours[short], scores[short] = top_k_of_rows(embeddings, short, k)
    return neighbours, scores


def _train(embeddings: np.ndarray, parameters: IvfParameters) -> np.ndarray:
    import faiss  # the pipeline's optional accelerator: only this method needs it

    n, d = embeddings.shape
    if parameters.lists == 1:
        return np.zeros((1, d), np.float32)
    sample = np.random.default_rng(_SEED).choice(n, parameters.training_points, replace=False)
    kmeans = faiss.Kmeans(
        d, parameters.lists, niter=_KMEANS_ITERATIONS, spherical=True, seed=_SEED,
        max_points_per_centroid=_TRAINING_PER_LIST, verbose=False,
    )
    kmeans.cp.min_points_per_centroid = 1  # small samples are fine: no warning on stderr
    kmeans.train(embeddings[np.sort(sample)])
    return kmeans.centroids


def _probes(embeddings: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """N × probes list numbers, nearest centroid first: column 0 is the list each photo is stored in."""
    out = np.empty((len(embeddings), probes), np.int32)
    step = max(1, _TILE_ELEMENTS // len(centroids))
    with torch.inference_mode():
        for start in range(0, len(embeddings), step):
            similarity = torch.from_numpy(embeddings[start : start + step] @ centroids.T)
            out[start : start + step] = torch.topk(similarity, probes, dim=1).indices.numpy()
    return out


def _search_lists(
    embeddings: np.ndarray, probes: np.ndarray, k: int, rows_per_tile: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's k best in each list it probes: (scores N×probes×k, ids N×probes×k), placeholders n."""
    n, width = probes.shape
    lists = int(probes.max()) + 1
    members_order = np.argsort(probes[:, 0], kind="stable")
    members_bounds = np.searchsorted(probes[members_order, 0], np.arange(lists + 1))
    flat = probes.ravel()
    probing_order = np.argsort(flat, kind="stable")
    probing_bounds = np.searchsorted(flat[probing_order], np.arange(lists + 1))
    scores = np.full((n, width, k), -np.inf, np.float32)
    ids = np.full((n, width, k), n, np.int32)
    position = np.empty(n, np.int64)  # each photo's place within its own list
    with torch.inference_mode():
        for number in range(lists):
            members = members_order[members_bounds[number] : members_bounds[number + 1]]
            if len(members) == 0:
                continue
            position[members] = np.arange(len(members))
            stored = embeddings[members]
            take = min(k, len(members))
            entries = probing_order[probing_bounds[number] : probing_bounds[number + 1]]
            for start in range(0, len(entries), rows_per_tile):
                rows, slots = np.divmod(entries[start : start + rows_per_tile], width)
                tile = embeddings[rows] @ stored.T
                count_similarities(tile.size)
                own = slots == 0  # the photo itself is in the list it is stored in
                tile[np.flatnonzero(own), position[rows[own]]] = -np.inf
                columns = np.argpartition(tile, -take, axis=1)[:, -take:] if take < len(members) else slice(None)
                scores[rows, slots, :take] = np.take_along_axis(tile, columns, axis=1) if take < len(members) else tile
                ids[rows, slots, :take] = members[columns] if take < len(members) else members
    ids[~np.isfinite(scores)] = n  # a list with no k others: its -inf padding is no neighbour
    return scores, ids


def _best_of(partial_scores: np.ndarray, partial_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best of its probes' partial lists: best score first, equal scores in row order."""
    n = len(partial_scores)
    neighbours = np.empty((n, k), np.int32)
    scores = np.empty((n, k), np.float32)
    step = 65536
    for start in range(0, n, step):
        s = partial_scores[start : start + step].reshape(-1, partial_scores.shape[1] * k)
        i = partial_ids[start : start + step].reshape(s.shape)
        order = _row_lexsort(s, i)[:, :k]
        neighbours[start : start + step] = np.take_along_axis(i, order, axis=1)
        scores[start : start + step] = np.take_along_axis(s, order, axis=1)
    return neighbours, scores


def _row_lexsort(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per row, the column order by score descending, then id ascending."""
    by_id = np.argsort(ids, axis=1, kind="stable")
    by_score = np.argsort(-np.take_along_axis(scores, by_id, axis=1), axis=1, kind="stable")
    return np.take_along_axis(by_id, by_score, axis=1)
