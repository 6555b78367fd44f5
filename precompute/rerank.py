"""Step 4b: re-rank each photo's nearest candidates by instance evidence (`--rerank`).

The neighbour search finds each photo's CANDIDATES most similar photos by
the model's descriptor; each candidate pair is then checked by local-feature
verification (`precompute.verification`), and the list is ordered by one
score in 0..1, the one the web app shows:

    score = cosine + (1 − cosine) · inliers / (inliers + INLIER_SCALE)   for a verified pair,
    score = cosine                                                        otherwise,

so verification can only raise a pair, towards 1, the more so the more
geometrically consistent matches it has; and order and displayed score agree.
With SSCD (`sscd`, `local+sscd`; optional, see precompute/sscd.py), each
photo's nearest by SSCD join its candidates, and the score is raised again:
score + (1 − score) · clip(SSCD_WEIGHT · (cos_sscd − SSCD_FLOOR), 0, 1).

Each unordered pair is verified once, whichever photo's list it came from,
always with the photo of the smaller content hash as the query: the result
does not depend on row order, so an incremental run that reuses earlier
results (`known`) gives exactly what a full run gives.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from precompute import verification
from core.atomic_write import atomic_file
from precompute.verification import LocalFeatures

MODES = ("auto", "off", "local", "sscd", "local+sscd")
DEFAULT_MODE = "auto"
# `auto` is `local` up to this many photos and `off` above: a run holds every photo's evidence in memory until the
# side file is written (about 42 KiB a photo, benchmarks/README.md), some 8 GiB here.
AUTO_LOCAL_UP_TO = 200_000
CANDIDATES = 50  # candidates verified per photo: no loss on the tune half, and deeper lists for larger collections (docs/quality.md)
SSCD_CANDIDATES = 20  # with SSCD, each photo's nearest by SSCD join its candidates (issue #20's measurement)
SSCD_FLOOR = 0.2  # SSCD cosines up to this are unrelated photos; above it they raise the score ...
SSCD_WEIGHT = 2.0  # ... this steeply: an SSCD cosine of 0.7 or more lifts a pair to 1
INLIER_SCALE = 5.0  # inliers at which a verified pair's score is halfway from its cosine to 1
NO_RESULT = -1  # `Verified.inliers` of a pair not verified (yet)



def resolved(mode: str, photos: int) -> str:
    """The mode a run of `photos` photos uses: `auto` picks by collection size, any other mode is itself."""
    if mode != "auto":
        return mode
    return "local" if photos <= AUTO_LOCAL_UP_TO else "off"


# [(query row, its candidate rows)] -> inliers per candidate, per group
VerifyGroups = Callable[[list[tuple[int, np.ndarray]]], list[np.ndarray]]


@dataclass
class Reranked:
    """Candidate lists re-scored and re-sorted, best first (N × CANDIDATES)."""

    neighbours: np.ndarray  # int32 rows
    scores: np.ndarray  # float32, in 0..1
    inliers: np.ndarray  # uint16, per listed pair; verification.MIN_INLIERS or more: verified
    candidate_inliers: np.ndarray  # int64, per pair of the lists as given (before re-sorting): for the pairs file
    verified_pairs: int  # pairs matched in this run
    reused_pairs: int  # pairs whose result came from `known`
    seconds: float  # CPU time of the matching


def rerank(
    neighbours: np.ndarray,
    cosines: np.ndarray,
    keys: list[str],
    features_of: Callable[[int], LocalFeatures],
    known: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    owners: np.ndarray | None = None,
    verify_groups: VerifyGroups | None = None,
    sscd: np.ndarray | None = None,
    local: bool = True,
) -> Reranked:
    """Re-rank the candidate lists (`neighbours`, `cosines`: L × C, from the neighbour search).

    `keys[row]` orders a pair's two photos (content hashes: stable across
    runs); `features_of(row)` gives a photo's local features; `known(a, b)`,
    for arrays of rows, gives earlier results (inliers, or NO_RESULT);
    `owners[i]` is the row whose list `neighbours[i]` is (default: row i, every row's list).
    `verify_groups` does the matching (default: here, with `features_of`; a Ray run: on the cluster's nodes).
    `sscd`: every row's SSCD vector (N × 512), to raise the scores with; `local`: verify local features at all.
    Candidates of -1 (padding) are listed last.
    """
    started = time.process_time()
    owners = np.arange(len(neighbours)) if owners is None else np.asarray(owners, np.int64)
    first, second = _pairs(neighbours, owners, keys)
    inliers = np.full(len(first), NO_RESULT, np.int64)
    if known is not None and len(first):
        inliers[:] = known(first, second)
    if not local:
        inliers[:] = 0
    todo = np.flatnonzero(inliers == NO_RESULT)
    reused = len(first) - len(todo) if local else 0
    groups = list(_by_query(first[todo], second[todo], todo))
    verify_groups = verify_groups or (lambda wanted: verify_here(wanted, features_of))
    results = verify_groups([(query, second[rows]) for query, rows in groups])
    for (_, rows), found in zip(groups, results):
        inliers[rows] = found
    listed = _lookup(first, second, inliers, neighbours, owners, keys)
    sscd_cosines = None
    if sscd is not None:
        mates = np.asarray(sscd[np.maximum(neighbours, 0)], np.float32)
        sscd_cosines = np.einsum("lcd,ld->lc", mates, np.asarray(sscd[owners], np.float32))
    scores = np.where(neighbours >= 0, combined_score(cosines, listed, sscd_cosines), -1.0)
    order = np.lexsort((np.broadcast_to(np.arange(neighbours.shape[1]), neighbours.shape), -scores), axis=1) \
        if neighbours.size else np.zeros(neighbours.shape, np.int64)
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return Reranked(take(neighbours).astype(np.int32), take(scores).astype(np.float32),
                    np.clip(take(listed), 0, 65535).astype(np.uint16), listed, len(todo), reused,
                    time.process_time() - started)


def uses_local(mode: str) -> bool:
    return mode in ("local", "local+sscd")


def uses_sscd(mode: str) -> bool:
    return mode in ("sscd", "local+sscd")


def with_sscd_candidates(neighbours: np.ndarray, cosines: np.ndarray, embeddings: np.ndarray,
                         sscd_neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's candidates joined by its nearest by SSCD that are not among them yet (-1 pads), with model cosines."""
    extra_cosines = np.einsum("lcd,ld->lc", np.asarray(embeddings[sscd_neighbours], np.float32),
                              np.asarray(embeddings, np.float32))
    return joined_candidates(neighbours, cosines, sscd_neighbours, extra_cosines, per_pair=True)


def joined_candidates(neighbours: np.ndarray, cosines: np.ndarray, extra: np.ndarray, extra_cosines: np.ndarray,
                      per_pair: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`neighbours` joined by the `extra` rows not among them yet (-1 pads, listed last).

    `extra_cosines`: the model's cosine of each extra pair (`per_pair`), or every row's against every row.
    """
    extra = extra.astype(np.int64)
    present = (extra[:, :, None] == neighbours[:, None, :]).any(axis=2)
    looked_up = extra_cosines if per_pair else np.take_along_axis(extra_cosines, extra, axis=1)
    extra = np.where(present, -1, extra)
    return (np.concatenate([neighbours, extra], axis=1).astype(np.int32),
            np.concatenate([cosines, np.where(extra >= 0, looked_up, -1.0)], axis=1).astype(np.float32))


def verify_here(groups: list[tuple[int, np.ndarray]], features_of: Callable[[int], LocalFeatures]) -> list[np.ndarray]:
    """Inliers of each (query row, candidate rows) group, one `verify` batch per query."""
    results = []
    for query, candidates in groups:
        matches = verification.verify(features_of(query), [features_of(int(b)) for b in candidates])
        results.append(np.array([m.inliers for m in matches], np.int64))
    return results


def combined_score(cosines: np.ndarray, inliers: np.ndarray, sscd_cosines: np.ndarray | None = None) -> np.ndarray:
    """The displayed score (see the module docstring): the cosine, raised towards 1 for verified pairs (and by SSCD)."""
    cosines = np.clip(cosines.astype(np.float64), 0.0, 1.0)
    verified = inliers >= verification.MIN_INLIERS
    strength = np.where(verified, inliers / (np.maximum(inliers, 0) + INLIER_SCALE), 0.0)
    score = cosines + (1 - cosines) * strength
    if sscd_cosines is not None:
        score += (1 - score) * np.clip(SSCD_WEIGHT * (sscd_cosines - SSCD_FLOOR), 0.0, 1.0)
    return score


def _pairs(neighbours: np.ndarray, owners: np.ndarray, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair the lists hold, once, as (query row, candidate row) with the query's key the smaller."""
    n, c = len(keys), neighbours.shape[1]
    rows = np.repeat(owners, c)
    columns = neighbours.reshape(-1).astype(np.int64)
    valid = (columns >= 0) & (columns != rows)
    rows, columns = rows[valid], columns[valid]
    rank = _key_rank(keys)
    swap = rank[rows] > rank[columns]
    first, second = np.where(swap, columns, rows), np.where(swap, rows, columns)
    unique = np.unique(first * n + second)
    return unique // n, unique % n


def _key_rank(keys: list[str]) -> np.ndarray:
    """Each row's position in key order (ties, i.e. equal content, by row)."""
    order = sorted(range(len(keys)), key=lambda row: (keys[row], row))
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def _by_query(first: np.ndarray, second: np.ndarray, positions: np.ndarray):
    """(query row, positions into the pair arrays) for each query row, so that its candidates go in one batch."""
    if not len(first):
        return
    order = np.argsort(first, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(first[order]) != 0])
    for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
        chosen = order[start:stop]
        yield int(first[chosen[0]]), positions[chosen]


def _lookup(first: np.ndarray, second: np.ndarray, inliers: np.ndarray, neighbours: np.ndarray, owners: np.ndarray,
            keys: list[str]) -> np.ndarray:
    """The inliers of each listed pair (L × C), from the per-pair results."""
    n = len(keys)
    rows = np.broadcast_to(owners[:, None], neighbours.shape)
    columns = neighbours.astype(np.int64)
    rank = _key_rank(keys)
    swap = rank[rows] > rank[np.maximum(columns, 0)]
    pair = np.where(swap, columns * n + rows, rows * n + columns)
    keys_sorted = first * n + second  # already sorted: np.unique's order
    at = np.clip(np.searchsorted(keys_sorted, pair), 0, max(0, len(keys_sorted) - 1))
    found = (len(keys_sorted) > 0) & (keys_sorted[at] == pair) if len(keys_sorted) else np.zeros(pair.shape, bool)
    return np.where(found & (columns >= 0), inliers[at] if len(inliers) else 0, 0)


@dataclass
class PairCache:
    """The previous run's candidate lists and results, by its rows, as the pairs file keeps them."""

    sha1: np.ndarray  # (N, 20) uint8: each row's content hash
    neighbours: np.ndarray  # (N, C) int32: the candidate lists the neighbour search gave (rows)
    cosines: np.ndarray  # (N, C) float32
    inliers: np.ndarray  # (N, C) int32: each listed pair's result

    def known(self, new_row: np.ndarray, keys: list[str]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """`known(a, b)` for `rerank`: earlier results of pairs whose photos are both unchanged (`new_row[old] >= 0`)."""
        n_new = len(keys)
        rows = np.repeat(np.arange(len(self.neighbours)), self.neighbours.shape[1])
        columns = self.neighbours.reshape(-1).astype(np.int64)
        a, b = new_row[rows], new_row[np.clip(columns, 0, None)]
        keep = (columns >= 0) & (a >= 0) & (b >= 0)
        a, b, results = a[keep], b[keep], self.inliers.reshape(-1)[keep]
        rank = _key_rank(keys)
        swap = rank[a] > rank[b]
        pair = np.where(swap, b * n_new + a, a * n_new + b)
        pair, first = np.unique(pair, return_index=True)
        results = results[first]

        def known(first_rows: np.ndarray, second_rows: np.ndarray) -> np.ndarray:
            wanted = first_rows * n_new + second_rows
            at = np.clip(np.searchsorted(pair, wanted), 0, max(0, len(pair) - 1))
            hit = (pair[at] == wanted) if len(pair) else np.zeros(len(wanted), bool)
            return np.where(hit, results[at] if len(results) else NO_RESULT, NO_RESULT)

        return known


def pairs_path_for(index_path: Path) -> Path:
    """`index.pkl` -> `index.pairs.npz`, beside the evidence file."""
    return index_path.with_name(index_path.stem + ".pairs.npz")


def write_pairs(path: Path, sha1: np.ndarray, neighbours: np.ndarray, cosines: np.ndarray, inliers: np.ndarray) -> None:
    with atomic_file(path) as out:
        np.savez(out, sha1=sha1, neighbours=neighbours.astype(np.int32), cosines=cosines.astype(np.float32),
                 inliers=inliers.astype(np.int32))


def read_pairs(path: Path, sha1: np.ndarray) -> PairCache | None:
    """The pairs file, if it is sound and belongs to the index whose rows have these content hashes; else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            cache = PairCache(*(data[name] for name in ("sha1", "neighbours", "cosines", "inliers")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    n = len(sha1)
    shape = cache.neighbours.shape
    sound = (cache.sha1.shape == (n, 20) and np.array_equal(cache.sha1, sha1) and len(shape) == 2 and shape[0] == n
             and cache.cosines.shape == shape and cache.inliers.shape == shape
             and cache.neighbours.dtype == np.int32 and cache.inliers.dtype == np.int32
             and (cache.neighbours.size == 0 or (cache.neighbours.min() >= -1 and cache.neighbours.max() < n)))
    return cache if sound else None
