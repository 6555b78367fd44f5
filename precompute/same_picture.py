"""The index's "same picture" pairs, and its "different picture" ones: candidate pairs verified on stored evidence.

Candidates are the pairs of the similar lists (a photo and each photo of its
list) and, when every photo has an SSCD copy descriptor, each photo's nearest
SSCD neighbours. Each candidate is checked by `verification.picture_sameness`
on the evidence the prepare workers extracted (local features, grey
thumbnails): no photo is decoded again. The pairs found to be one picture go
into the index (`index_file.new_index(same_picture=...)`), and so do those
found to be two pictures of one scene (`different_picture`): `duplicate_groups`
joins the first into groups, and leaves out a photo that the first would make
one picture with two photos of the second kind.

An update verifies only the candidates it has not verified before: a pair
whose two photos' contents (SHA-1) were a candidate pair of the previous index
keeps its verdict, since the verdict depends on nothing but those two photos'
evidence, when the previous index was checked the same way (`CHECK`: the
evidence's settings and the decision's thresholds). So an update gives the
same pairs as a full rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from precompute.evidence import SETTINGS, PhotoEvidence
from precompute.verification import SAME_MIN_SSCD, SAME_PICTURE_SETTINGS, picture_sameness

SSCD_NEIGHBOURS = 5  # nearest SSCD neighbours per photo offered as candidates, when every photo has SSCD
_SSCD_BLOCK = 4096  # rows per block of the SSCD products: never an N×N matrix
# What a verdict depends on besides the two photos: stored in the index, and earlier verdicts are kept only if equal.
CHECK = {**SETTINGS, **SAME_PICTURE_SETTINGS}


@dataclass(frozen=True)
class SamePictureStep:
    pairs: np.ndarray  # (m, 2) int32 rows, the lower first: the pairs verified as one picture
    different: np.ndarray  # the same, for the pairs verified as two pictures of one scene
    candidates: int  # candidate pairs
    verified: int  # of those, checked in this run (the others kept their previous verdict)


def candidate_pairs(neighbours: np.ndarray, sscd: np.ndarray | None = None) -> np.ndarray:
    """Unique (lower row, higher row) pairs from the similar lists and, given SSCD vectors, their nearest neighbours."""
    n, k = neighbours.shape
    first = np.repeat(np.arange(n, dtype=np.int64), k)
    second = np.asarray(neighbours, np.int64).reshape(-1)
    if sscd is not None and len(sscd) > 1:
        extra = _sscd_neighbours(np.asarray(sscd, np.float32), min(SSCD_NEIGHBOURS, len(sscd) - 1))
        first = np.concatenate([first, np.repeat(np.arange(n, dtype=np.int64), extra.shape[1])])
        second = np.concatenate([second, extra.reshape(-1)])
    keep = first != second
    pairs = np.stack([np.minimum(first, second)[keep], np.maximum(first, second)[keep]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


def _sscd_neighbours(vectors: np.ndarray, count: int) -> np.ndarray:
    """Each row's `count` nearest rows by SSCD cosine, itself left out; rows below SAME_MIN_SSCD point to themselves."""
    n = len(vectors)
    found = np.empty((n, count), np.int64)
    for start in range(0, n, _SSCD_BLOCK):
        block = vectors[start:start + _SSCD_BLOCK] @ vectors.T
        rows = np.arange(start, min(n, start + _SSCD_BLOCK))
        block[rows - start, rows] = -np.inf
        nearest = np.argpartition(-block, count - 1, axis=1)[:, :count]
        weak = np.take_along_axis(block, nearest, axis=1) < SAME_MIN_SSCD
        found[rows] = np.where(weak, rows[:, None], nearest)
    return found


def same_picture_pairs(evidence: Sequence[PhotoEvidence], neighbours: np.ndarray, previous: dict | None = None) -> SamePictureStep:
    """The candidates verified as one picture, and as two; `previous`: an earlier index whose verdicts may be kept."""
    sscd = np.stack([photo.sscd for photo in evidence]) if evidence and all(p.sscd is not None for p in evidence) else None
    candidates = candidate_pairs(neighbours, sscd)
    known, same_before, different_before = _previous_verdicts(previous)
    verdicts: dict[str, list] = {"same": [], "different": []}
    checked = 0
    for a, b in candidates.tolist():
        key = _key(evidence[a].sha1, evidence[b].sha1)
        if key in known:
            verdict = "same" if key in same_before else "different" if key in different_before else None
        else:
            checked += 1
            one, other = evidence[a], evidence[b]
            sameness = picture_sameness(one.features, one.gray, other.features, other.gray, one.sscd, other.sscd)
            verdict = "same" if sameness.same() else "different" if sameness.different() else None
        if verdict:
            verdicts[verdict].append((a, b))
    pairs, different = (np.array(verdicts[kind], np.int32).reshape(-1, 2) for kind in ("same", "different"))
    return SamePictureStep(pairs, different, len(candidates), checked)


def _key(sha1: str, other: str) -> tuple[str, str]:
    return (sha1, other) if sha1 <= other else (other, sha1)


def _previous_verdicts(index: dict | None) -> tuple[set, set, set]:
    """(content pairs the previous index verified, those it found one picture, those two); empty without them."""
    if index is None or index.same_picture is None or index.different_picture is None or index.same_picture_check != CHECK:
        return set(), set(), set()
    hashes = index.photos.columns["sha1"]
    sha1 = [row.tobytes().hex() for row in hashes]
    sscd_free = candidate_pairs(index.neighbours)  # the SSCD candidates are not kept: they are verified again
    known = {_key(sha1[a], sha1[b]) for a, b in sscd_free.tolist()}
    same, different = ({_key(sha1[a], sha1[b]) for a, b in np.asarray(pairs).tolist()}
                       for pairs in (index.same_picture, index.different_picture))
    return known, same, different
