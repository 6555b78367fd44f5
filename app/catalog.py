"""The loaded index, seen the way the web pages need it: photos by id, pages, similar photos.

Photos are addressed by their integer id only. File paths come from the
index, never from a request, and are checked to stay inside their folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from precompute.index_file import read_index


@dataclass(frozen=True)
class Similar:
    photo: dict
    score: float  # cosine similarity, clamped to 0..1 for display


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
    def __init__(self, index: dict, index_path: Path, photo_root: Path | None = None):
        self.photos: list[dict] = index["photos"]
        self.neighbours: np.ndarray = index["neighbors"]
        self.scores: np.ndarray = index["scores"]
        self.model: dict = index["model"]
        self.created: str = index.get("created", "")
        self.photo_root = Path(photo_root or index.get("photo_root", ".")).resolve()
        self.thumbnail_dir = (index_path.parent / index.get("thumbnail_dir", "")).resolve()
        self._row_of_id = {photo["id"]: row for row, photo in enumerate(self.photos)}

    @classmethod
    def load(cls, index_path: Path, photo_root: Path | None = None) -> "Catalog":
        index_path = Path(index_path)
        return cls(read_index(index_path), index_path, photo_root)

    def __len__(self) -> int:
        return len(self.photos)

    def row(self, photo_id: int) -> int | None:
        return self._row_of_id.get(photo_id)

    def photo(self, photo_id: int) -> dict | None:
        row = self.row(photo_id)
        return None if row is None else self.photos[row]

    def similar(self, photo_id: int) -> list[Similar]:
        row = self._row_of_id[photo_id]
        return [
            Similar(self.photos[neighbour], float(min(1.0, max(0.0, score))))
            for neighbour, score in zip(self.neighbours[row].tolist(), self.scores[row].tolist())
        ]

    def page_count(self, per_page: int) -> int:
        return max(1, math.ceil(len(self.photos) / per_page))

    def page(self, number: int, per_page: int) -> Page | None:
        """Page `number` (from 1), or None if there is no such page."""
        if not 1 <= number <= self.page_count(per_page):
            return None
        start = (number - 1) * per_page
        return Page(number, self.page_count(per_page), per_page, self.photos[start : start + per_page])

    def page_of(self, photo_id: int, per_page: int) -> int:
        return self._row_of_id[photo_id] // per_page + 1

    def thumbnail_path(self, photo: dict, kind: str) -> Path | None:
        entry = photo.get("thumbnails", {}).get(kind)
        return None if entry is None else _inside(self.thumbnail_dir, entry["file"])

    def original_path(self, photo: dict) -> Path | None:
        return _inside(self.photo_root, photo["path"])


def _inside(folder: Path, relative: str) -> Path | None:
    """`folder / relative` if it exists and stays inside `folder`, else None."""
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path
