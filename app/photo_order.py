"""The orders a gallery can be listed in: by name (the index's own order, by path) or by date taken, newest first.

The date order is sorted once at load, before the workers fork, with its
inverse (each row's place in it), so a page of it and a photo's previous and
next in it are lookups. An index without dates sorts by the file time
(`PhotoTable.taken`). Photos taken at the same second keep the name order.
"""

from __future__ import annotations

import numpy as np

from core.index_file import PhotoTable

SORTS = ("name", "date")  # the gallery's `sort` argument; "name" is the default


class PhotoOrder:
    def __init__(self, photos: PhotoTable):
        taken = photos.taken()
        self._by_date = np.argsort(-taken, kind="stable").astype(np.int64)  # newest first
        self._date_place = np.empty_like(self._by_date)
        self._date_place[self._by_date] = np.arange(len(self._by_date))

    def rows(self, sort: str, within: np.ndarray | None = None) -> np.ndarray | range:
        """Rows in `sort` order: every photo's, or those of `within` (rows in name order, such as a folder's)."""
        if within is None:
            return range(len(self._by_date)) if sort == "name" else self._by_date
        if sort == "name":
            return within
        return within[np.argsort(self._date_place[within], kind="stable")]

    def place(self, row: int, sort: str) -> int:
        """Where `row` is in the whole gallery's `sort` order, from 0."""
        return row if sort == "name" else int(self._date_place[row])

    def row_at(self, place: int, sort: str) -> int | None:
        if not 0 <= place < len(self._by_date):
            return None
        return place if sort == "name" else int(self._by_date[place])
