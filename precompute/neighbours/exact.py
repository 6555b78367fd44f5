"""Step 4: each photo's top-k most similar photos, by cosine similarity.

Similarity is symmetric, so each pair of row blocks is multiplied once: the
tile of block a against block b offers candidates to a's rows along its rows
and to b's rows along its columns. That halves the matrix products, the
bulk of the work (numpy's OpenBLAS, into one reused buffer: it ran 1.7× faster
than torch's MKL on the AMD machines this was tuned on).

Each row keeps its k best so far. The diagonal tiles come first and give
every row a k-th best score to beat; after that, a tile's entries below their
row's k-th best are dropped with one comparison, and the few that remain are
merged in. Memory stays bounded by one tile however large the collection: a
full N × N matrix is never built. See benchmarks/neighbours.py for the
comparison with faiss's exact `IndexFlatIP`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# A 4096 × 4096 float32 tile is 64 MiB: large enough for BLAS to run at full
# speed, small enough to stay out of the way. A fresh tile per product instead
# of one reused buffer would cost a page fault per 4 KiB written. Smaller
# collections get at least four blocks (of at least 1024 rows): diagonal tiles
# are computed whole and cut with topk, so with fewer blocks they dominate
# (10k photos: 0.72 s in 4096-row blocks, 0.63 s in 2560-row ones).
_BLOCK = 4096
_MIN_BLOCK = 1024
_MIN_BLOCKS = 4
# Past this many surviving entries per row, a tile's rows are cut to their k
# best with torch.topk instead: tiles full of near-duplicates, or rows whose
# own block was too small to give them k candidates to beat.
_SPARSE_PER_ROW = 4

_similarities = 0  # pairs multiplied since the process started: see `similarities_computed`


def count_similarities(pairs: int) -> None:
    """Record `pairs` similarities computed (every product tile reports its size here)."""
    global _similarities
    _similarities += pairs


def similarities_computed() -> int:
    """Similarities computed by this process so far; a difference of two readings is one step's work."""
    return _similarities


def top_k_neighbours(embeddings: np.ndarray, k: int, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For unit-length rows, return (neighbours int32 N×k, scores float32 N×k).

    Row i lists the other rows most similar to row i, best first; a row is
    never its own neighbour. With fewer than k + 1 rows, k shrinks to N - 1.
    Within the k, equal scores are listed in row order.
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    k = max(0, min(k, n - 1))
    best = RunningBest(n, k)
    if k == 0:
        return best.ids, best.scores
    size = min(n, block or _default_block(n))
    blocks = [(start, min(n, start + size)) for start in range(0, n, size)]
    buffer = np.empty(size * size, dtype=np.float32)
    with torch.inference_mode():
        for start, stop in blocks:
            tile = _product(embeddings, (start, stop), (start, stop), buffer)
            np.fill_diagonal(tile, -np.inf)  # a photo is not its own neighbour
            best.offer_top(tile, start, start)
        survivors = np.empty(size * size, dtype=bool)
        for a, rows in enumerate(blocks):
            for columns in blocks[a + 1 :]:
                tile = _product(embeddings, rows, columns, buffer)
                best.offer(tile, rows[0], columns[0], survivors)
                best.offer(tile, rows[0], columns[0], survivors, to_columns=True)
    return best.ids, best.scores


def top_k_of_rows(embeddings: np.ndarray, rows: np.ndarray, k: int, block: int = _BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of the given rows only, against every row: len(rows) × N similarities, not N²."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    best = RunningBest(len(rows), max(0, min(k, len(embeddings) - 1)))
    if best.k == 0:
        return best.ids, best.scores
    survivors = np.empty(block * block, dtype=bool)
    for first, start, tile in row_tiles(embeddings, rows, block):
        best.offer(tile, first, start, survivors)
    return best.ids, best.scores


def row_tiles(embeddings: np.ndarray, rows: np.ndarray, block: int = _BLOCK) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first, start, tile): rows[first:first + block] against rows start.. of all, itself at -inf.

    Each tile is written into one reused buffer: use it before asking for the next.
    """
    n = len(embeddings)
    buffer = np.empty(block * block, dtype=np.float32)
    with torch.inference_mode():
        for first in range(0, len(rows), block):
            chunk = rows[first : first + block]
            for start in range(0, n, block):
                stop = min(n, start + block)
                tile = np.matmul(embeddings[chunk], embeddings[start:stop].T, out=buffer[: len(chunk) * (stop - start)].reshape(len(chunk), -1))
                count_similarities(tile.size)
                own = np.flatnonzero((chunk >= start) & (chunk < stop))
                tile[own, chunk[own] - start] = -np.inf  # a photo is not its own neighbour
                yield first, start, tile


def _default_block(n: int) -> int:
    quarter = -(-n // _MIN_BLOCKS)
    return min(_BLOCK, max(_MIN_BLOCK, -(-quarter // 512) * 512))


def _product(embeddings: np.ndarray, rows: tuple[int, int], columns: tuple[int, int], buffer: np.ndarray) -> np.ndarray:
    """Similarities of rows[0]:rows[1] against columns[0]:columns[1], written into `buffer`."""
    height, width = rows[1] - rows[0], columns[1] - columns[0]
    out = buffer[: height * width].reshape(height, width)
    count_similarities(out.size)
    return np.matmul(embeddings[rows[0] : rows[1]], embeddings[columns[0] : columns[1]].T, out=out)


class RunningBest:
    """Each row's k best (score, column) so far, sorted by score descending, then column ascending."""

    def __init__(self, n: int, k: int):
        self.k = k
        self.scores = np.full((n, k), -np.inf, dtype=np.float32)
        self.ids = np.full((n, k), n, dtype=np.int32)  # placeholders sort after every real column

    def offer(
        self,
        tile: np.ndarray,
        first_row: int,
        first_column: int,
        survivors: np.ndarray,
        to_columns: bool = False,
        row_ids: np.ndarray | None = None,
    ) -> None:
        """Merge in the entries of `tile` that can beat their photo's k-th best.

        The tile holds rows first_row.. against columns first_column..; each entry is
        offered to its row's photo, or with `to_columns` to its column's photo. The
        comparison runs in the tile's own memory order either way, and
        `flatnonzero` (a tenth of the time of a 2-D `nonzero`) finds the few survivors.
        With `to_columns`, `row_ids` names the photos of the tile's rows when they
        are not the consecutive first_row.. (the changed rows of an update).
        """
        height, width = tile.shape
        if to_columns:
            photos_first, others_first = first_column, first_row
            thresholds = self.scores[first_column : first_column + width, -1][None, :]
        else:
            photos_first, others_first = first_row, first_column
            thresholds = self.scores[first_row : first_row + height, -1][:, None]
        mask = np.greater_equal(tile, thresholds, out=survivors[: tile.size].reshape(tile.shape))
        photos = width if to_columns else height
        if np.count_nonzero(mask) > _SPARSE_PER_ROW * self.k * photos:
            self.offer_top(tile.T if to_columns else tile, photos_first, others_first, row_ids)
            return
        flat = np.flatnonzero(mask)
        rows, columns = np.divmod(flat, width)
        photo, other = (columns, rows) if to_columns else (rows, columns)
        self.merge(photos_first, photo, _ids(other, others_first, row_ids), tile.ravel()[flat])

    def offer_top(self, tile: np.ndarray, first_row: int, first_column: int, column_ids: np.ndarray | None = None) -> None:
        """Merge in each row's k best entries of `tile` (its columns are first_column.., or `column_ids`)."""
        k = min(self.k, tile.shape[1])
        scores, columns = torch.topk(torch.from_numpy(np.ascontiguousarray(tile)), k, dim=1)
        rows = np.repeat(np.arange(len(tile)), k)
        self.merge(first_row, rows, _ids(columns.numpy().ravel(), first_column, column_ids), scores.numpy().ravel())

    def merge(self, first_row: int, rows: np.ndarray, columns: np.ndarray, scores: np.ndarray) -> None:
        """Merge candidates (row first_row + rows[i], column columns[i], scores[i]) into the rows' k best."""
        if len(rows) == 0:
            return
        affected = np.unique(rows)
        targets = first_row + affected
        k = self.k
        group = np.concatenate([np.repeat(np.arange(len(affected)), k), np.searchsorted(affected, rows)])
        all_scores = np.concatenate([self.scores[targets].ravel(), scores.astype(np.float32, copy=False)])
        all_ids = np.concatenate([self.ids[targets].ravel(), columns.astype(np.int32, copy=False)])
        order = np.lexsort((all_ids, -all_scores, group))
        starts = np.searchsorted(group[order], np.arange(len(affected)))
        keep = order[(starts[:, None] + np.arange(k)).ravel()]
        self.scores[targets] = all_scores[keep].reshape(-1, k)
        self.ids[targets] = all_ids[keep].reshape(-1, k)


def _ids(positions: np.ndarray, first: int, ids: np.ndarray | None) -> np.ndarray:
    """The photo ids of tile positions: `first` onwards, or looked up in `ids`."""
    return positions + first if ids is None else ids[positions]
