"""What an incremental update costs: a full build of N photos against adding 1% more.

    .venv/bin/python -m benchmarks.incremental [--photos DIR] [--count N] [--fraction 0.01]

All runs are measured here, in the same process, on the same photos: the
baseline is a full build over N photos, then `fraction`·N new photos are
added and the same build runs again over the existing index, then once more
with nothing new, which measures the fixed cost every run pays. The photos
are linked (not copied) into a temporary folder.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from core.index_file import read_index
from precompute.build import BuildOptions, build_index
from precompute.neighbours.exact import top_k_neighbours
from precompute.scan import PhotoFile, scan_photos
from tests.support.datasets import HOLIDAYS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=HOLIDAYS, help="photo folder (default: %(default)s)")
    parser.add_argument("--count", type=int, default=0, help="photos in the first build (default: all but the added ones)")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of new photos in the update (default: %(default)s)")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if not args.photos.is_dir():
        print(f"error: photo folder not found: {args.photos}", file=sys.stderr)
        return 1
    photos = scan_photos(args.photos).photos
    count = args.count or math.floor(len(photos) / (1 + args.fraction))
    added = max(1, round(count * args.fraction))
    if count + added > len(photos):
        print(f"error: {args.photos} has {len(photos)} photos, fewer than {count} + {added}", file=sys.stderr)
        return 1
    options = BuildOptions(model=args.model, workers=args.workers)

    with tempfile.TemporaryDirectory(prefix="lookalike-incremental-") as tmp:
        folder, index_path = Path(tmp, "photos"), Path(tmp, "out", "index.pkl")
        folder.mkdir()
        link(photos[:count], folder)
        full = build_index(folder, index_path, options)
        link(photos[count : count + added], folder)
        update = build_index(folder, index_path, options)
        rerun = build_index(folder, index_path, options)  # nothing new: the fixed cost of a run
        embeddings = read_index(index_path).embeddings
        started = time.perf_counter()
        top_k_neighbours(embeddings, options.k)
        neighbour_seconds = time.perf_counter() - started

    print(f"\nIncremental update, {args.model}, photos from {args.photos}")
    print(f"{'run':<30}{'embedded':>9}{'reused':>8}{'seconds':>9}{'vs full':>9}")
    for name, report in (("full build", full), (f"update, +{added} new photos", update), ("rerun, nothing new", rerun)):
        print(f"{name:<30}{report.embedded:>9}{report.reused:>8}{report.seconds:>9.2f}{report.seconds / full.seconds:>9.3f}")
    per_photo_full = (full.seconds - rerun.seconds) / full.embedded
    per_photo_update = (update.seconds - rerun.seconds) / added
    print(f"\nNew photos: {added / count:.1%} of {count}. Fixed cost of any run (scan, model load, "
          f"neighbours, write): {rerun.seconds:.2f} s, of which the neighbour pass over {len(embeddings)} photos "
          f"is {neighbour_seconds:.3f} s.")
    print(f"Embedding cost above that: full build {per_photo_full:.3f} s per photo, update "
          f"{per_photo_update:.3f} s per new photo; the update's embedding work is "
          f"{(update.seconds - rerun.seconds) / (full.seconds - rerun.seconds):.1%} of the full build's.")
    return 0


def link(photos: list[PhotoFile], folder: Path) -> None:
    for photo in photos:
        (folder / photo.relpath.replace("/", "__")).symlink_to(photo.path.resolve())


if __name__ == "__main__":
    sys.exit(main())
