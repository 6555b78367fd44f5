"""A collection's folders as albums: which folder each photo is in, the folder tree, and each folder's photo count.

Computed once when the app loads, from the index's path column, before the
workers fork (so they share it). Paths are one UTF-8 blob with offsets; a
photo's folder is the span of its path before the last `/`. Grouping a
million spans by their bytes one Python string at a time takes about a
second; here each span is fingerprinted with numpy instead (two 64-bit sums
of its bytes times random weights, by position, together with its length),
the fingerprints are grouped by one `np.unique`, and only one path per folder
becomes a Python string. The second fingerprint is checked to agree within
every group; on the astronomically unlikely disagreement the folders are
grouped the slow, exact way.

Folder names are the index's, which keeps names that are not valid UTF-8
through surrogateescape; `folder_url` percent-encodes those very bytes, and
`app.views` reads them back from the raw request path, so every folder has
exactly one URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.index_file import PhotoTable

_SLASH = ord("/")


@dataclass(frozen=True)
class Folder:
    code: int
    path: str  # relative to the photo folder, "" for the top; surrogateescape like photo paths
    name: str  # the last part of `path`
    photos: int  # directly in this folder
    total: int  # in this folder and every folder below it


class Folders:
    """The folder tree of a PhotoTable: `of_row[row]` is the code of the folder photo `row` is in; code 0 is the top."""

    def __init__(self, photos: PhotoTable):
        offsets = photos.columns["path_offsets"]
        blob = np.asarray(photos.columns["path_bytes"])
        starts = offsets[:-1]
        ends = _folder_ends(blob, offsets)
        groups, representatives = _group_spans(blob, starts, ends - starts)
        named = [_text(blob, starts[row], ends[row]) for row in representatives.tolist()]
        paths, parents = _with_ancestors(named)
        codes = {path: code for code, path in enumerate(paths)}
        remap = np.array([codes[path] for path in named], np.int32)
        self.of_row: np.ndarray = remap[groups] if len(groups) else np.zeros(0, np.int32)
        self.paths = paths
        self._codes = codes
        self._parents = parents
        direct = np.bincount(self.of_row, minlength=len(paths))
        total = direct.copy()
        for code in range(len(paths) - 1, 0, -1):  # paths are sorted, so a folder comes after its parent
            total[parents[code]] += total[code]
        self._direct, self._total = direct.tolist(), total.tolist()
        self._children: list[list[int]] = [[] for _ in paths]
        for code in range(1, len(paths)):
            self._children[parents[code]].append(code)
        # Rows grouped by folder, each group in gallery order: a folder's photos are one slice of it.
        self._grouped = np.argsort(self.of_row, kind="stable")
        self._group_starts = np.concatenate([[0], np.cumsum(direct)])

    def __len__(self) -> int:
        return len(self.paths)

    def code(self, path: str) -> int | None:
        return self._codes.get(path)

    def folder(self, code: int) -> Folder:
        path = self.paths[code]
        return Folder(code, path, path.rpartition("/")[2], self._direct[code], self._total[code])

    def children(self, code: int) -> list[Folder]:
        """The folders directly inside this one, by name."""
        return [self.folder(child) for child in self._children[code]]

    def trail(self, code: int) -> list[Folder]:
        """The folders from the top down to this one, for breadcrumbs."""
        codes = []
        while code >= 0:
            codes.append(code)
            code = self._parents[code]
        return [self.folder(c) for c in reversed(codes)]

    def rows(self, code: int) -> np.ndarray:
        """The rows of the photos directly in this folder, in gallery order."""
        return self._grouped[self._group_starts[code] : self._group_starts[code + 1]]


def _folder_ends(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Where each path's folder ends: at its last `/`, or at its start for a photo at the top."""
    starts = offsets[:-1]
    slashes = np.flatnonzero(blob == _SLASH)
    if not len(slashes):
        return starts.copy()
    last = np.searchsorted(slashes, offsets[1:]) - 1  # the last slash before each path's end
    ends = slashes[np.maximum(last, 0)]
    return np.where((last >= 0) & (ends >= starts), ends, starts)


def _group_spans(blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal byte spans: (group of each span, one span of each group), groups numbered in no particular order.

    Neighbouring rows mostly share a folder (an index lists photos by path), so only the first
    fingerprint of each run of equal ones goes through `np.unique`.
    """
    if not len(starts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first, second = _fingerprints(blob, starts, lengths)
    keys = first ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    run_starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    _, first_runs, run_groups = np.unique(keys[run_starts], return_index=True, return_inverse=True)
    groups = np.repeat(run_groups.ravel(), np.diff(np.append(run_starts, len(keys))))
    representatives = run_starts[first_runs]
    if not np.array_equal(second, second[representatives][groups]):  # two folders with one fingerprint
        return _group_exactly(blob, starts, lengths)
    return groups, representatives


def _fingerprints(blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit sums per span: its k-th 8-byte word times weight k, wrapping (random odd weights, fixed seed).

    Eight bytes at a time: the word at byte j is made of the two aligned words it straddles.
    """
    padded = np.zeros(-(-len(blob) // 8) * 8 + 16, np.uint8)
    padded[: len(blob)] = blob
    aligned = padded.view("<u8")
    word_count = int(-(-lengths.max() // 8))
    weights = np.random.default_rng(0x10CA1).integers(0, 2**63, size=(2, max(1, word_count)), dtype=np.uint64)
    weights |= np.uint64(1)
    sums = np.zeros((2, len(starts)), np.uint64)
    rows = np.arange(len(starts))
    for k in range(word_count):
        if not lengths[rows].min() > 8 * k:
            rows = rows[lengths[rows] > 8 * k]
        left = np.minimum(lengths[rows] - 8 * k, 8).astype(np.uint64)  # bytes of this word in the span
        word = _word_at(aligned, starts[rows] + 8 * k)
        word &= np.where(left == 8, np.uint64(2**64 - 1), (np.uint64(1) << (np.uint64(8) * (left % np.uint64(8)))) - np.uint64(1))
        whole = len(rows) == len(starts)
        for which in range(2):
            if whole:
                sums[which] += word * weights[which, k]
            else:
                sums[which, rows] += word * weights[which, k]
    return sums[0], sums[1]


def _word_at(aligned: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian 8-byte words starting at byte offsets `at`, from the blob's aligned words."""
    index, shift = at // 8, (at % 8).astype(np.uint64) * np.uint64(8)
    low = aligned.take(index) >> shift
    high = aligned.take(index + 1) << (np.uint64(64) - shift)  # a shift by 64 is undefined: masked out below
    return np.where(shift == 0, low, low | high)


def _group_exactly(blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seen: dict[bytes, int] = {}
    groups = np.array([seen.setdefault(blob[s : s + n].tobytes(), len(seen)) for s, n in zip(starts.tolist(), lengths.tolist())])
    representatives = np.zeros(len(seen), np.int64)
    representatives[groups[::-1]] = np.arange(len(groups))[::-1]  # the first row of each group
    return groups, representatives


def _text(blob: np.ndarray, start: int, end: int) -> str:
    return blob[start:end].tobytes().decode("utf-8", "surrogateescape")


def _with_ancestors(paths: list[str]) -> tuple[list[str], list[int]]:
    """Every folder and every folder above it, sorted ("" first), and each one's parent (-1 for the top)."""
    every = {""}
    for path in paths:
        while path:
            every.add(path)
            path = path.rpartition("/")[0]
    ordered = sorted(every, key=lambda p: p.split("/") if p else [])
    codes = {path: code for code, path in enumerate(ordered)}
    return ordered, [codes[path.rpartition("/")[0]] if path else -1 for path in ordered]
