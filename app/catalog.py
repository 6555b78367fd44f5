"""The loaded index, seen the way the web pages need it: photos by id, pages, similar photos.

Photos are addressed by their integer id only. File paths come from the
index, never from a request, and a file is served only if, as opened, it is
inside its folder.

The index's columns are memory-mapped (see `core.index_file`): a
photo's dict is made when a page shows it, a page's photos together. The
embeddings are mapped whenever the index has them (search by photo, "more
like these" and a similar list limited to a folder that the stored lists
cannot fill rank them, core/folder_scope.py), but read only by those queries:
until one comes, they cost address space, not memory, and once read they are
pages of the file, shared by every worker. The folder tree and the date order
are computed here, once, before the workers fork.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from app.photo_order import PhotoOrder
from core.folder_scope import ScopedList, scoped_similar
from core.folders import Folders
from core.index_file import Index, IndexFileError, ModelInfo, PhotoTable, display_name, read_index, system_folder
from core.indexed_files import open_inside, within
from core.relevance_feedback import best_rows, feedback_query

if TYPE_CHECKING:
    from app.media import Media

# Photo dicts each worker keeps once made, the latest first: about 13 MiB, as many photos as the page
# cache keeps photo pages. Pages show the same photos again and again; a dict costs a few µs to make.
_PHOTO_DICTS_KEPT = 10_000


@dataclass(frozen=True)
class Similar:
    photo: dict
    score: float  # what the list is ranked by, clamped to 0..1: the cosine, raised for verified pairs with --rerank
    same_scene: bool = False  # local features confirmed the same scene or object (--rerank)

    @classmethod
    def scored(cls, photo: dict, score: float, same_scene: bool = False) -> "Similar":
        return cls(photo, float(min(1.0, max(0.0, score))), bool(same_scene))


@dataclass(frozen=True)
class Page:
    number: int
    count: int
    per_page: int
    photos: list[dict]


def date_taken(photo: dict) -> str:
    """'3 Aug 2024, 14:05', the camera's clock as it read (EXIF), or the file's time (UTC), marked as such."""
    try:
        moment = datetime.fromtimestamp(photo["taken"], timezone.utc).strftime("%-d %b %Y, %H:%M")
    except (OverflowError, OSError, ValueError):  # a date no calendar here can show
        return ""
    return moment if photo["taken_source"] == "exif" else f"{moment} (file time)"


class Catalog:
    """`confined`: the index came from elsewhere (LOOKALIKE_INDEX_URL), so the photo folder it records
    is used only if it lies inside the index's own folder; see `served_photo_root`."""

    def __init__(
        self,
        index: Index,
        index_path: Path,
        photo_root: Path | None = None,
        originals: "Media | None" = None,
        *,
        confined: bool = False,
    ):
        self.photos: PhotoTable = index.photos
        embeddings = index.embeddings
        # An index may carry no embeddings (N×0): then nothing can be ranked beyond the stored lists.
        self.embeddings: np.ndarray | None = embeddings if embeddings.shape[1] and len(embeddings) else None
        self.neighbours: np.ndarray = index.neighbours
        self.scores: np.ndarray = index.scores
        # Verified "same picture" pairs (precompute.same_picture); None: the index was built without the evidence.
        self.same_picture: np.ndarray | None = index.same_picture
        self.different_picture: np.ndarray | None = index.different_picture  # two shots of one scene, verified
        # With --rerank: which listed pairs local features verified; the scores are then the re-ranked ones.
        self.verified: np.ndarray | None = index.verified
        self.model: ModelInfo = index.model
        self.created: str = index.created
        index_folder = index_path.parent.resolve()
        self.thumbnail_dir = (index_folder / index.thumbnail_dir).resolve()
        if system_folder(self.thumbnail_dir):
            raise IndexFileError(f"{index_path}: the thumbnail folder {self.thumbnail_dir} is a system folder")
        self.originals = originals  # a store (app/media.py) when originals live elsewhere: S3, a CDN
        # Why originals are not served from disk, when the recorded folder was not accepted; said once at start.
        self.photo_root_note: str | None = None
        self.photo_root: Path | None = None
        if self.originals is None:
            self.photo_root, self.photo_root_note = served_photo_root(
                index.photo_root, index_folder, self.thumbnail_dir, photo_root, confined
            )
        self.row: Callable[[int], int | None] = _row_finder(self.photos.ids)
        self.folders = Folders(self.photos)
        self.order = PhotoOrder(self.photos)
        self._made: dict[int, dict] = {}  # row -> photo dict, oldest first

    @classmethod
    def load(
        cls,
        index_path: Path,
        photo_root: Path | None = None,
        originals: "Media | None" = None,
        *,
        confined: bool = False,
    ) -> "Catalog":
        index_path = Path(index_path)
        return cls(read_index(index_path), index_path, photo_root, originals, confined=confined)

    def __len__(self) -> int:
        return len(self.photos)

    def photo(self, photo_id: int) -> dict | None:
        row = self.row(photo_id)
        return None if row is None else self._photos_at([row])[0]

    def similar(self, photo_id: int) -> list[Similar]:
        return self.similar_in(photo_id, "all")[0]

    def similar_in(self, photo_id: int, scope: str) -> tuple[list[Similar], bool, bool]:
        """The similar photos within `scope` (core.folder_scope.SCOPES), whether the list is as long as asked,
        and whether it is ranked with local-feature evidence (else by appearance alone)."""
        found: ScopedList = scoped_similar(
            self.row(photo_id), scope, self.folders, self.neighbours, self.scores, self.embeddings, self.verified
        )
        marks = found.same_scene or [False] * len(found.rows)
        similar = [Similar.scored(photo, score, same) for photo, score, same in zip(self._photos_at(found.rows), found.scores, marks)]
        return similar, found.complete, found.reranked

    def nearest(self, query: np.ndarray, k: int) -> list[Similar]:
        """The k photos most similar to a unit-length query embedding, best first.

        A brute-force dot product over every embedding: for a single query this
        is one matrix-vector product over the mapped embeddings, which reads all
        of them (100k × 1280-d: 0.5 GB; a million: 5 GB, shared by the workers).
        """
        if self.embeddings is None:
            return []
        return self._ranked(*best_rows(self.embeddings, query, k))

    def more_like(self, liked: Sequence[int], unliked: Sequence[int], k: int) -> list[Similar]:
        """The k photos most like the `liked` ids and least like the `unliked` ones (Rocchio), best first.

        The ids must be known (`row`) and `liked` not empty; the picked and
        rejected photos themselves are never among the results. Needs the embeddings.
        """
        liked_rows, unliked_rows = [self.row(i) for i in liked], [self.row(i) for i in unliked]
        query = feedback_query(self.embeddings, liked_rows, unliked_rows)
        return self._ranked(*best_rows(self.embeddings, query, k, exclude=liked_rows + unliked_rows))

    def _ranked(self, rows: np.ndarray, scores: np.ndarray) -> list[Similar]:
        return [Similar.scored(photo, score) for photo, score in zip(self._photos_at(rows.tolist()), scores.tolist())]

    def beside(self, photo_id: int, step: int, sort: str = "name") -> dict | None:
        """The photo `step` places after (or before) this one in the gallery's `sort` order, if any."""
        row = self.order.row_at(self.order.place(self.row(photo_id), sort) + step, sort)
        return None if row is None else self._photos_at([row])[0]

    def page_count(self, per_page: int, count: int | None = None) -> int:
        """Pages of the whole gallery, or of a listing of `count` photos."""
        return max(1, math.ceil((len(self.photos) if count is None else count) / per_page))

    def page(self, number: int, per_page: int, rows: Sequence[int] | None = None) -> Page | None:
        """Page `number` (from 1) of the whole gallery in name order, or of `rows`; None if there is no such page."""
        rows = range(len(self.photos)) if rows is None else rows
        count = self.page_count(per_page, len(rows))
        if not 1 <= number <= count:
            return None
        start = (number - 1) * per_page
        shown = rows[start : start + per_page]
        return Page(number, count, per_page, self._photos_at(shown if isinstance(shown, range) else shown.tolist()))

    def photos_at_rows(self, rows: Sequence[int]) -> list[dict]:
        """The photo dicts of these index rows, in order: only theirs are made (a page of duplicate groups)."""
        return self._photos_at(rows) if rows else []

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

    def page_of(self, photo_id: int, per_page: int, sort: str = "name") -> int:
        return self.order.place(self.row(photo_id), sort) // per_page + 1

    def open_thumbnail(self, photo: dict, kind: str) -> BinaryIO | None:
        entry = photo.get("thumbnails", {}).get(kind)
        return None if entry is None else open_inside(self.thumbnail_dir, entry["file"])

    def open_original(self, photo: dict) -> BinaryIO | None:
        """Never a file in the thumbnail folder, whatever the photo folder and the path say."""
        return None if self.photo_root is None else open_inside(self.photo_root, photo["path"], self.thumbnail_dir)

    def has_original(self, photo: dict) -> bool:
        """Whether the photo's page can link its original: checked on disk each time, as files come and go.

        Only what the page shows; whether the file is served is decided when it is opened.
        """
        if self.original_url(photo) is not None:
            return True
        return self.photo_root is not None and _inside(self.photo_root, photo["path"], self.thumbnail_dir) is not None

    def original_url(self, photo: dict) -> str | None:
        """Where the original is served from when originals live elsewhere (S3, a CDN)."""
        return None if self.originals is None else self.originals.url(photo["path"])


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
def served_photo_root(
    recorded: str, index_folder: Path, thumbnail_dir: Path, override: Path | None, confined: bool
) -> tuple[Path | None, str | None]:
    """The folder originals are served from, or None and why not.

    The operator's LOOKALIKE_PHOTO_ROOT wins. A system folder is refused
    whoever names it. An index that arrived by download (`confined`) may only
    name a folder inside its own: the archive is data, not configuration. No
    index may root its photos in its thumbnail folder, and a downloaded one not
    beside it either (its own folder, `.`): the archive fills that folder.
    """
    if override is not None:
        root = Path(override).resolve()
        if system_folder(root):
            raise IndexFileError(f"LOOKALIKE_PHOTO_ROOT {str(override)!r} is a system folder; photos are never served from it")
        return root, None
    root = (index_folder / recorded).resolve() if confined else Path(recorded).resolve()
    if system_folder(root):
        raise IndexFileError(
            f"the index's photo_root {recorded!r} is a system folder; set LOOKALIKE_PHOTO_ROOT to where the photos are"
        )
    if confined and not root.is_relative_to(index_folder):
        return None, (
            f"originals are not served from disk: the downloaded index names photo_root {recorded!r}, outside "
            f"{index_folder}; set LOOKALIKE_PHOTO_ROOT to serve them"
        )
    if root.is_relative_to(thumbnail_dir) or (confined and thumbnail_dir.is_relative_to(root)):
        return None, (
            f"originals are not served from disk: the index names photo_root {recorded!r}, which is or holds its "
            f"thumbnail folder {thumbnail_dir}; set LOOKALIKE_PHOTO_ROOT to serve them"
        )
    return root, None


def _inside(folder: Path, relative: str, excluded: Path | None = None) -> Path | None:
    """`folder / relative` if it exists and stays inside `folder` (and out of `excluded`), else None."""
    try:
        path = _resolved_inside(folder, relative)
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13), a name too long: not cached
        return None
    return path if path is not None and not within(path, excluded) and path.is_file() else None


@lru_cache(maxsize=8192)
def _resolved_inside(folder: Path, relative: str) -> Path | None:
    """Resolving a path costs a system call per component: once per file, not on every page.

    Whether the file still exists is checked by the caller, every time.
    """
    path = (folder / relative).resolve()
    return path if path.is_relative_to(folder) else None
