"""Folders and dates at scale: what they add to the app's start, and what their pages and lists cost.

On a synthetic index (`benchmarks.synthetic_index`: albums of 1,000 photos,
dates spread over ten years):

- the folder tree, computed at load: the vectorised fingerprints of
  `core.folders` against grouping the paths one Python string at a time
  (the obvious way, and the baseline);
- the app's whole load (`Catalog.load`: folders and the date order
  included) against reading the index alone;
- a folder's page in date order and the whole gallery in date order against
  the gallery in name order, rendered each time (page cache off);
- a similar list limited to the photo's folder or to the other folders,
  where the stored lists cannot fill it (one matrix-vector product over the
  folder's or over every embedding), against the stored list. The
  embeddings here are `--folders-dim` wide; at 1280-d `in=others` reads
  1280 / dim times as many bytes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.measure import Row, best_of_interleaved
from benchmarks.synthetic_index import write_synthetic_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("folders")
    group.add_argument("--folders-photos", type=int, default=1_000_000, help="photos in the index (default: %(default)s)")
    group.add_argument("--folders-dim", type=int, default=64, help="embedding width (default: %(default)s)")


def _group_one_by_one(photos) -> int:
    """The baseline: each photo's folder as a Python bytes object, grouped by a dict."""
    offsets = photos.columns["path_offsets"].tolist()
    blob = memoryview(np.ascontiguousarray(photos.columns["path_bytes"])).cast("B")
    seen: dict[bytes, int] = {}
    for start, stop in zip(offsets[:-1], offsets[1:]):
        path = bytes(blob[start:stop])
        seen.setdefault(path[: max(0, path.rfind(b"/"))], len(seen))
    return len(seen)


def run(args: argparse.Namespace) -> Iterator[Row]:
    from app import create_app
    from app.catalog import Catalog
    from core.folder_scope import scoped_similar
    from core.folders import Folders
    from core.index_file import read_index

    n, rounds = args.folders_photos, args.rounds
    note = f"{n:,} photos"
    with tempfile.TemporaryDirectory(prefix="lookalike-folders-") as scratch:
        index_path = write_synthetic_index(Path(scratch) / "index.pkl", n, k=10, neighbours="random", dim=args.folders_dim)
        photos = read_index(index_path).photos
        tree = best_of_interleaved(rounds, ours=lambda: Folders(photos), baseline=lambda: _group_one_by_one(photos))
        yield Row("folder tree at load", tree["ours"].seconds, tree["baseline"].seconds, "s", "ratio > 1",
                  higher_is_better=False, note=f"{note}, vs one path at a time")
        load = best_of_interleaved(rounds, ours=lambda: Catalog.load(index_path), baseline=lambda: read_index(index_path))
        yield Row("app load with folders and date order", load["ours"].seconds, load["baseline"].seconds, "s",
                  higher_is_better=False, note=f"{note}, vs reading the index alone")

        os.environ["LOOKALIKE_PAGE_CACHE_MB"] = "0"  # every request renders its page
        client = create_app(index_path).test_client()
        albums = [f"/folders/album-{a:03d}/?sort=date" for a in np.linspace(0, (n - 1) // 1000, 20).astype(int)]
        gallery_pages = np.linspace(1, -(-n // 48), 20).astype(int).tolist()
        urls = {
            "folder": albums,
            "by_date": [f"/?sort=date&page={p}" for p in gallery_pages],
            "baseline": [f"/?page={p}" for p in gallery_pages],
        }
        for url in sum(urls.values(), []):
            assert client.get(url).status_code == 200, url
        pages = best_of_interleaved(rounds, **{name: (lambda u=u: [client.get(url) for url in u]) for name, u in urls.items()})
        for name, figure in (("folder", "a folder's page by date"), ("by_date", "gallery page by date")):
            yield Row(figure, pages[name].seconds / 20 * 1e3, pages["baseline"].seconds / 20 * 1e3, "ms", "ratio ≥ 0.85",
                      higher_is_better=False, note=f"{note}, vs gallery by name, rendered each time")

        catalog = Catalog.load(index_path)
        rows = np.random.default_rng(3).integers(0, n, 20).tolist()

        # The synthetic lists are random, so in other folders: `in=folder` must look further. For `in=others`
        # to have to, lists of ten photos of the same album stand in for them.
        i = np.arange(n)[:, None]
        same_album = (i - i % 1000 + (i % 1000 + 1 + np.arange(10)) % 1000).clip(max=n - 1).astype(np.int32)

        def lists(scope: str, neighbours: np.ndarray):
            return lambda: [scoped_similar(r, scope, catalog.folders, neighbours, catalog.scores, catalog.embeddings) for r in rows]

        scoped = best_of_interleaved(rounds, folder=lists("folder", catalog.neighbours), others=lists("others", same_album),
                                     baseline=lists("all", catalog.neighbours))
        for name in ("folder", "others"):
            yield Row(f"similar list in={name}", scoped[name].seconds / 20 * 1e3, scoped["baseline"].seconds / 20 * 1e3, "ms",
                      higher_is_better=False, note=f"{note} × {args.folders_dim}-d, from the embeddings, vs the stored list")
