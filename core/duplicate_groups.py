"""Duplicate groups of two kinds, from what an index stores, and the photo of each group to keep.

- **Same picture** (`SAME_PICTURE`, the default): copies of one photo, joined
  by the pairs the pipeline verified on local features and thumbnails
  (`precompute.same_picture`, stored as the index's `same_picture`). A photo
  those pairs join to two photos verified as two shots of one scene (the
  index's `different_picture`) is left out: a small or cropped copy can match
  two shots of a scene closely, and cannot be a copy of both. An index built
  without that evidence has none (`has_same_picture`).
- **Similar shots** (`SIMILAR_SHOTS`): photos whose stored similarity is at
  least a threshold, for reviewing bursts and re-takes; described below.

One owner for the `/duplicates` page, `/api/duplicates` and `python -m
tools.duplicates`, so the three always agree on what a group is and
which photo it suggests keeping. It needs only numpy (no torch, no scipy):
the web app runs it on Heroku.

A similar-shots group is a connected component of the graph whose edges are the stored
(photo, neighbour) pairs scoring at least the threshold. The lists hold each
photo's top k only: a pair above the threshold that lies beyond rank k in
both photos' lists is joined only through other members of the group. Such a
photo has all k of its list at or above the threshold; `crowded` counts them,
so the pages and the command can say when a larger `--k` would find more.

Groups come in a stable order: the largest first, then by their lowest photo
id. Within a group the photos follow the keep rule, the suggested keep first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.index_file import Index, PhotoTable

# Chosen on the tune half of the near-duplicate evaluation and confirmed on the other (docs/quality.md,
# `python -m tools.evaluate.duplicate_threshold`).
DEFAULT_THRESHOLD = 0.92
# Below this a group is "alike", not "the same photo": chains of look-alikes would join most of a collection.
MIN_THRESHOLD = 0.50
MAX_THRESHOLD = 1.0
SAME_PICTURE, SIMILAR_SHOTS = "same-picture", "similar-shots"
GROUP_KINDS = (SAME_PICTURE, SIMILAR_SHOTS)
KIND_NAMES = {SAME_PICTURE: "same picture", SIMILAR_SHOTS: "similar shots"}
NO_EVIDENCE = ("this index has no same-picture evidence (it was built with --rerank off, or before there was any), so it "
               "offers similar shots only; build it again with --rerank local to find copies of one picture")
KEEP_RULE = "the highest resolution (width × height), then the largest file, then the most EXIF tags, then the lowest id"


@dataclass(frozen=True)
class DuplicateGroups:
    """The groups of one kind (and threshold), as two arrays: cheap to keep, and to page through."""

    threshold: float | None  # similar shots: the similarity that joins; None for same-picture groups
    rows: np.ndarray  # index rows of every grouped photo, group after group, each in keep-rule order
    starts: np.ndarray  # group g is rows[starts[g]:starts[g + 1]]; its suggested keep is rows[starts[g]]
    crowded: int  # photos whose whole neighbour list scores at or above the threshold

    def __len__(self) -> int:
        return len(self.starts) - 1

    def group(self, number: int) -> np.ndarray:
        """The rows of group `number`, the suggested keep first."""
        return self.rows[self.starts[number] : self.starts[number + 1]]

    def groups(self, start: int, stop: int) -> list[np.ndarray]:
        """Groups `start` to `stop` (a page): only their rows are touched."""
        return [self.group(number) for number in range(max(0, start), min(stop, len(self)))]

    @property
    def photos(self) -> int:
        return len(self.rows)

    @property
    def kind(self) -> str:
        return SIMILAR_SHOTS if self.threshold is not None else SAME_PICTURE


def connected_components(n: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each of `n` nodes' component label, the smallest node in its component, for edges first[i]–second[i].

    Vectorised union-find: every round hooks each tree's root under the
    smallest root it has an edge to, then compresses the paths fully, so
    every root is the smallest node of its tree. A round costs O(edges) in
    numpy and merges at least one tree of every component still in pieces;
    in practice few rounds are needed (benchmarks/README.md: a million photos
    in under a second, chains included).
    """
    parent = np.arange(n, dtype=np.int64)
    first, second = np.asarray(first, np.int64), np.asarray(second, np.int64)
    while True:
        a, b = parent[first], parent[second]
        apart = a != b
        if not apart.any():
            return parent
        first, second, a, b = first[apart], second[apart], a[apart], b[apart]  # edges inside one tree are done
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def keep_order(photos: PhotoTable, rows: np.ndarray) -> np.ndarray:
    """Positions that sort `rows` by the keep rule (KEEP_RULE), best first."""
    columns = photos.columns
    dimensions = columns["dimensions"][rows].astype(np.int64)
    pixels = dimensions[:, 0] * dimensions[:, 1]
    return np.lexsort((photos.ids[rows], -_exif_tag_counts(photos, rows), -columns["size"][rows], -pixels))


def _exif_tag_counts(photos: PhotoTable, rows: np.ndarray) -> np.ndarray:
    """EXIF tags per photo; an index from before the metadata columns counts none, so the rule goes on to the id."""
    return photos.columns["exif_tags"][rows].astype(np.int64) if photos.has_metadata else np.zeros(len(rows), np.int64)


def find_groups(neighbours: np.ndarray, scores: np.ndarray, photos: PhotoTable, threshold: float) -> DuplicateGroups:
    """Similar shots: the groups of photos joined by stored similarities of at least `threshold` (see the module docstring)."""
    if neighbours.shape[1] == 0 or len(photos) == 0:
        return DuplicateGroups(threshold, np.zeros(0, np.int64), np.zeros(1, np.int64), 0)
    above = np.asarray(scores) >= np.float32(threshold)
    sources, ranks = np.nonzero(above)
    rows, starts = _ordered_groups(photos, sources, np.asarray(neighbours)[sources, ranks])
    return DuplicateGroups(threshold, rows, starts, int(np.count_nonzero(above[:, -1])))


def has_same_picture(index: Index) -> bool:
    """Whether the index holds verified same-picture pairs (it was built with the evidence)."""
    return index.same_picture is not None


def same_picture_groups(pairs: np.ndarray, photos: PhotoTable, different: np.ndarray | None = None) -> DuplicateGroups:
    """Same picture: the groups of photos joined by verified pairs (an index's `same_picture`), ordered as above;
    without the photos they join to both photos of a `different` pair (an index's `different_picture`)."""
    pairs = np.asarray(pairs).reshape(-1, 2)
    if different is not None:
        pairs = pairs[~np.isin(pairs, ambiguous_photos(pairs, np.asarray(different).reshape(-1, 2))).any(axis=1)]
    rows, starts = _ordered_groups(photos, pairs[:, 0], pairs[:, 1])
    return DuplicateGroups(None, rows, starts, 0)


def ambiguous_photos(pairs: np.ndarray, different: np.ndarray) -> np.ndarray:
    """The photos that `pairs` join to both photos of a pair in `different`: one picture with two others."""
    partners: dict[int, set[int]] = {}
    for a, b in pairs.tolist():
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    paired = different[np.isin(different, list(partners)).all(axis=1)] if partners else different[:0]
    found = set()
    for a, b in paired.tolist():  # few: both photos of the pair must have a copy
        found |= partners[a] & partners[b]
    return np.array(sorted(found), np.int64)


def _ordered_groups(photos: PhotoTable, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts) of the connected components of two or more photos: largest first, then by lowest id; within
    each, the keep rule's order."""
    n = len(photos)
    labels = connected_components(n, first, second)
    sizes = np.bincount(labels, minlength=n)
    members = np.flatnonzero(sizes[labels] >= 2)
    group_of = labels[members]
    ids = photos.ids[members]
    lowest_id = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(lowest_id, group_of, ids)
    within = np.empty(len(members), np.int64)
    within[keep_order(photos, members)] = np.arange(len(members))
    order = np.lexsort((within, lowest_id[group_of], -sizes[group_of]))
    rows = members[order]
    ordered_groups = group_of[order]
    boundaries = np.flatnonzero(ordered_groups[1:] != ordered_groups[:-1]) + 1
    starts = np.concatenate(([0], boundaries, [len(rows)])) if len(rows) else np.zeros(1, np.int64)
    return rows.astype(np.int64), starts.astype(np.int64)


def photo_facts(photo: dict) -> dict:
    """What the keep rule weighs and when the photo was taken, for the JSON API and the command's listings.

    The date is ISO 8601 without a zone: EXIF records the camera's clock, not where in the world it was.
    """
    taken = datetime.fromtimestamp(photo["taken"], timezone.utc).replace(tzinfo=None).isoformat()
    return {"width": photo["width"], "height": photo["height"], "size": photo["size"], "exif_tags": photo["exif_tags"],
            "taken": taken, "taken_source": photo["taken_source"]}
