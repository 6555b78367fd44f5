"""The loaded index, seen the way the web pages need it: photos by id, pages, similar photos.

Photos are addressed by their integer id only. File paths come from the
index, never from a request, and are checked to stay inside their folder.

The index's columns are memory-mapped (see `precompute.index_file`): a
photo's dict is made when a page shows it, a page's photos together. The
embeddings are kept only when search by photo is on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np

from precompute.index_file import PhotoTable, read_index

# Photo dicts each worker keeps once made, the latest first: about 13 MiB, as many photos as the page
# cache keeps photo pages. Pages show the same photos again and again; a dict costs a few µs to make.
_PHOTO_DICTS_KEPT = 10_000


@dataclass(frozen=True)
class Similar:
    photo: dict
    score: float  # cosine similarity, clamped to 0..1 for display

    @classmethod
    def scored(cls, photo: dict, cosine: float) -> "Similar":
        return cls(photo, float(min(1.0, max(0.0, cosine))))


@dataclass(frozen=True)
class Page:
    number: int
    count: int
    per_page: int
    photos: list[dict]


def display_name(path: str) -> str:
    """A file name that can always be shown, even if it was not valid UTF-8 on disk."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Catalog:
    def __init__(
        self,
        index: dict,
        index_path: Path,
        photo_root: Path | None = None,
        originals_url: str | None = None,
        with_embeddings: bool = True,
    ):
        self.photos: PhotoTable = index["photos"]
        # Without search the embeddings, the bulk of the file, are never mapped in at all.
        self.embeddings: np.ndarray | None = index["embeddings"] if with_embeddings else None
        self.neighbours: np.ndarray = index["neighbors"]
        self.scores: np.ndarray = index["scores"]
        self.model: dict = index["model"]
        self.created: str = index.get("created", "")
        self.photo_root = Path(photo_root or index.get("photo_root", ".")).resolve()
        self.thumbnail_dir = (index_path.parent / index.get("thumbnail_dir", "")).resolve()
        self.originals_url = originals_url.rstrip("/") + "/" if originals_url else None
        self.row: Callable[[int], int | None] = _row_finder(self.photos.ids)
        self._made: dict[int, dict] = {}  # row -> photo dict, oldest first

    @classmethod
    def load(
        cls, index_path: Path, photo_root: Path | None = None, originals_url: str | None = None, with_embeddings: bool = True
    ) -> "Catalog":
        index_path = Path(index_path)
        return cls(read_index(index_path), index_path, photo_root, originals_url, with_embeddings)

    def __len__(self) -> int:
        return len(self.photos)

    def photo(self, photo_id: int) -> dict | None:
        row = self.row(photo_id)
        return None if row is None else self._photos_at([row])[0]

    def similar(self, photo_id: int) -> list[Similar]:
        row = self.row(photo_id)
        return [
            Similar.scored(photo, score)
            for photo, score in zip(self._photos_at(self.neighbours[row].tolist()), self.scores[row].tolist())
        ]

    def nearest(self, query: np.ndarray, k: int) -> list[Similar]:
        """The k photos most similar to a unit-length query embedding, best first.

        A brute-force dot product over every embedding: for a single query this
        is one matrix-vector product over the mapped embeddings, which reads all
        of them (100k × 1280-d: 0.5 GB; a million: 5 GB, shared by the workers).
        """
        k = min(k, len(self.photos))
        if k == 0 or self.embeddings is None:
            return []
        scores = self.embeddings @ query.astype(np.float32, copy=False)
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((best, -scores[best]))]
        return [Similar.scored(photo, score) for photo, score in zip(self._photos_at(best.tolist()), scores[best].tolist())]

    def beside(self, photo_id: int, step: int) -> dict | None:
        """The photo `step` places after (or before) this one in gallery order, if any."""
        row = self.row(photo_id) + step
        return self._photos_at([row])[0] if 0 <= row < len(self.photos) else None

    def page_count(self, per_page: int) -> int:
        return max(1, math.ceil(len(self.photos) / per_page))

    def page(self, number: int, per_page: int) -> Page | None:
        """Page `number` (from 1), or None if there is no such page."""
        if not 1 <= number <= self.page_count(per_page):
            return None
        start = (number - 1) * per_page
        rows = range(start, min(start + per_page, len(self.photos)))
        return Page(number, self.page_count(per_page), per_page, self._photos_at(rows))

    def _photos_at(self, rows: Sequence[int]) -> list[dict]:
        """The dicts of these rows: kept ones as they are, the others made together and kept.

        Safe with threaded workers: at worst two threads make the same dict.
        """
        made = self._made
        photos = [made.get(row) for row in rows]
        missing = [row for row, photo in zip(rows, photos) if photo is None]
        if not missing:
            return photos
        fresh = dict(zip(missing, self.photos.records(rows if len(missing) == len(rows) else missing)))
        made.update(fresh)
        for oldest in list(itertools.islice(made, max(0, len(made) - _PHOTO_DICTS_KEPT))):
            made.pop(oldest, None)
        return [photo if photo is not None else fresh[row] for row, photo in zip(rows, photos)]

    def page_of(self, photo_id: int, per_page: int) -> int:
        return self.row(photo_id) // per_page + 1

    def thumbnail_path(self, photo: dict, kind: str) -> Path | None:
        entry = photo.get("thumbnails", {}).get(kind)
        return None if entry is None else _inside(self.thumbnail_dir, entry["file"])

    def original_path(self, photo: dict) -> Path | None:
        return _inside(self.photo_root, photo["path"])

    def has_original(self, photo: dict) -> bool:
        """Whether the photo's page can link its original: checked on disk each time, as files come and go."""
        return self.original_url(photo) is not None or self.original_path(photo) is not None

    def original_url(self, photo: dict) -> str | None:
        """Where the original is served from when originals live elsewhere (S3, a CDN)."""
        if self.originals_url is None:
            return None
        return self.originals_url + quote(photo["path"].encode("utf-8", "surrogateescape"))


def _row_finder(ids: np.ndarray) -> Callable[[int], int | None]:
    """Row of a photo id: the id itself when ids are 0..N-1 in order (a fresh index), else a binary search.

    Either way no dict of a million entries: the sorted order is one array,
    made in the master before the workers fork and shared by them.
    """
    n = len(ids)
    if np.array_equal(ids, np.arange(n)):
        return lambda photo_id: photo_id if 0 <= photo_id < n else None
    order = np.argsort(ids, kind="stable").astype(np.int64)
    ordered = ids[order]

    def row(photo_id: int) -> int | None:
        if not 0 <= photo_id < 2**63:
            return None
        position = int(np.searchsorted(ordered, photo_id))
        return int(order[position]) if position < n and ordered[position] == photo_id else None

    return row


def _inside(folder: Path, relative: str) -> Path | None:
    """`folder / relative` if it exists and stays inside `folder`, else None."""
    path = _resolved_inside(folder, relative)
    return path if path is not None and path.is_file() else None


@lru_cache(maxsize=8192)
def _resolved_inside(folder: Path, relative: str) -> Path | None:
    """Resolving a path costs a system call per component: once per file, not on every page.

    Whether the file still exists is checked by the caller, every time.
    """
    path = (folder / relative).resolve()
    return path if path.is_relative_to(folder) else None
