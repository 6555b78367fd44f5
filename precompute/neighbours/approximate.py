"""Step 4 for large collections: approximate top-k neighbours with an inverted file (IVF).

faiss's k-means splits the collection into `lists` clusters (the inverted
lists). Each photo is stored in the list of its nearest centroid and is
compared with the photos of its `probes` nearest lists, as faiss's
`IndexIVFFlat` with `nprobe` does, and, since similarity is symmetric, with
every photo that probes its own list. Instead of faiss's one-query-at-a-time
scan, the search runs list by list: every photo that probes list `a` is
multiplied against list `a`'s members in one BLAS product. Each list is first
multiplied by itself, which gives every photo a k-th best to beat; the
products with its other probes are then cut with one comparison, as the
exact search's tiles are.

The scores are the exact float32 cosines of the candidates found, and the
format is exact's: int32 ids and float32 scores, best first, equal scores in
row order, a photo never its own neighbour. A row that its probes give fewer
than k candidates (tiny or lopsided lists) is searched exactly instead.

Memory beyond the embeddings: each row's k best so far (N × k × 8 bytes,
80 MB at 1M photos), the probe table (N × probes × 4 bytes, 64 MB), the
centroids, and product tiles of about 64 MiB with the rows gathered for them
(a lopsided list makes its tiles larger in proportion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from precompute.neighbours.exact import RunningBest, count_similarities, top_k_of_rows

# The rule for the parameters; docs/quality.md has the recall it gives.
_LISTS_PER_SQRT_N = 2  # lists = 2·√N: list size √N / 2 (500 at 1M photos)
_PROBES = 16
# k-means sample size per centroid. The sample's share of the collection is what recall needs (64·2/√N:
# 12.8 % at 1M photos): a group of similar photos that the sample barely holds gets no centroid of its
# own, and its photos land in different lists. At 32 per list (6.4 % at 1M) recall@10 fell to 0.96.
_TRAINING_PER_LIST = 64
_KMEANS_ITERATIONS = 10
_TILE_ELEMENTS = 16 * 2**20  # 64 MiB of float32
_SEED = 1234
_SPARSE_PER_ROW = 4  # past this many survivors per row, cut a tile with argpartition instead


@dataclass(frozen=True)
class IvfParameters:
    """How the collection is split and searched: chosen from its size and dimension by `ivf_parameters`."""

    lists: int
    probes: int
    training_points: int
    rows_per_tile: int  # of one list's probing photos, so that a tile stays within _TILE_ELEMENTS


def ivf_parameters(n: int, d: int) -> IvfParameters:
    """lists = 2·√N (at least 1); probes = 16 (at most all); k-means on 64 photos per list.

    The search is N · probes · (N / lists) products of length d, so it grows as
    N^1.5 where exact grows as N². k-means adds 10 iterations × 128·√N photos
    × 2·√N centroids = 2,560·N (a third of the search's 8,000·N at 1M photos),
    and finding each photo's probes N · lists. d sets only how many gathered
    rows fit in a tile.
    """
    lists = max(1, round(_LISTS_PER_SQRT_N * math.sqrt(n)))
    list_size = max(1, n // lists)
    return IvfParameters(
        lists=lists,
        probes=min(lists, _PROBES),
        training_points=min(n, _TRAINING_PER_LIST * lists),
        rows_per_tile=max(1, min(_TILE_ELEMENTS // list_size, _TILE_ELEMENTS // d)),
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
    best = _search_lists(embeddings, probes, k, parameters.rows_per_tile)
    neighbours, scores = best.ids, best.scores
    short = np.flatnonzero(np.isneginf(scores[:, -1]))  # rows whose probes held fewer than k other photos
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


def _search_lists(embeddings: np.ndarray, probes: np.ndarray, k: int, rows_per_tile: int) -> RunningBest:
    """Each photo's k best among the members of the lists it probes (placeholders n where fewer)."""
    n, width = probes.shape
    lists = int(probes.max()) + 1
    members_order = np.argsort(probes[:, 0], kind="stable")
    members_bounds = np.searchsorted(probes[members_order, 0], np.arange(lists + 1))
    best = RunningBest(n, k)
    survivors = np.empty(rows_per_tile * int(np.diff(members_bounds).max()), dtype=bool)
    with torch.inference_mode():
        # First each list against itself: every photo gets a k-th best to beat, and the
        # products with its other probes' lists can then be cut with one comparison.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # these products are small: a second thread costs more than it gives
        try:
            for number in range(lists):
                _search_own_list(embeddings, members_order[members_bounds[number] : members_bounds[number + 1]], best, rows_per_tile, survivors)
        finally:
            torch.set_num_threads(threads)
        flat = probes[:, 1:].ravel()
        probing_order = np.argsort(flat, kind="stable")
        probing_bounds = np.searchsorted(flat[probing_order], np.arange(lists + 1))
        for number in range(lists):
            members = members_order[members_bounds[number] : members_bounds[number + 1]]
            if len(members) == 0:
                continue
            stored = embeddings[members]
            entries = probing_order[probing_bounds[number] : probing_bounds[number + 1]]
            for start in range(0, len(entries), rows_per_tile):
                rows = entries[start : start + rows_per_tile] // (width - 1)
                tile = embeddings[rows] @ stored.T
                count_similarities(tile.size)
                _offer(best, tile, rows, members, survivors)
                _offer_to_members(best, tile, rows, members, probes, survivors)
    return best


def _search_own_list(embeddings: np.ndarray, members: np.ndarray, best: RunningBest, rows_per_tile: int, survivors: np.ndarray) -> None:
    stored = torch.from_numpy(embeddings[members])
    for start in range(0, len(members), rows_per_tile):
        rows = members[start : start + rows_per_tile]
        tile = (stored[start : start + rows_per_tile] @ stored.T).numpy()
        count_similarities(tile.size)
        tile[np.arange(len(rows)), np.arange(start, start + len(rows))] = -np.inf  # not its own neighbour
        _offer(best, tile, rows, members, survivors, first=True)


def _offer_to_members(best: RunningBest, tile: np.ndarray, rows: np.ndarray, members: np.ndarray, probes: np.ndarray, survivors: np.ndarray) -> None:
    """Offer the tile's entries to its columns' photos too: similarity is symmetric, so a pair is found if either photo probes the other's list.

    A member that probes a row's own list meets that row in that list's tile:
    those entries are skipped, so no pair is offered to the same photo twice.
    """
    mask = np.greater_equal(tile, best.scores[members, -1][None, :], out=survivors[: tile.size].reshape(tile.shape))
    if np.count_nonzero(mask) > _SPARSE_PER_ROW * best.k * len(members):  # members with few candidates yet
        met_there = (probes[members, 1:][:, None, :] == probes[rows, 0][None, :, None]).any(axis=2)
        _offer(best, np.where(met_there, -np.inf, tile.T), members, rows, survivors, first=True)
        return
    flat = np.flatnonzero(mask)
    row, column = np.divmod(flat, tile.shape[1])
    kept = ~(probes[members[column], 1:] == probes[rows[row], 0][:, None]).any(axis=1)
    best.merge(0, members[column[kept]], rows[row[kept]], tile.ravel()[flat[kept]])


def _offer(best: RunningBest, tile: np.ndarray, rows: np.ndarray, columns: np.ndarray, survivors: np.ndarray, first: bool = False) -> None:
    """Merge the entries of `tile` (photos `rows` against photos `columns`) that can beat their row's k-th best."""
    take = min(best.k, tile.shape[1])
    mask = None if first else np.greater_equal(tile, best.scores[rows, -1][:, None], out=survivors[: tile.size].reshape(tile.shape))
    if mask is None or np.count_nonzero(mask) > _SPARSE_PER_ROW * best.k * len(rows):
        picked = np.argpartition(tile, -take, axis=1)[:, -take:] if take < tile.shape[1] else np.broadcast_to(np.arange(take), (len(rows), take))
        best.merge(0, np.repeat(rows, take), columns[picked].ravel(), np.take_along_axis(tile, picked, axis=1).ravel())
        return
    flat = np.flatnonzero(mask)
    row, column = np.divmod(flat, tile.shape[1])
    best.merge(0, rows[row], columns[column], tile.ravel()[flat])
