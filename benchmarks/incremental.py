"""What an incremental update costs: a full build of N photos against adding 1% more.

    .venv/bin/python benchmarks/incremental.py [--photos DIR] [--count N] [--fraction 0.01]

Both runs are measured here, in the same process, on the same photos: the
baseline is a full build over N photos, then `fraction`·N new photos are
added and the same command runs again over the existing index. The photos are
linked (not copied) into a temporary folder.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from precompute.build import BuildOptions, build_index  # noqa: E402
from precompute.index_file import read_index  # noqa: E402
from precompute.models import load_model  # noqa: E402
from precompute.neighbours import top_k_neighbours  # noqa: E402
from precompute.scan import PhotoFile, scan_photos  # noqa: E402

HOLIDAYS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "holidays-dev"


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
        embeddings = read_index(index_path)["embeddings"]
        started = time.perf_counter()
        top_k_neighbours(embeddings, options.k)
        neighbour_seconds = time.perf_counter() - started
    started = time.perf_counter()
    load_model(args.model)
    load_seconds = time.perf_counter() - started

    per_photo = (full.seconds - load_seconds) / full.embedded
    expected = load_seconds + added * per_photo + neighbour_seconds
    print(f"\nIncremental update, {args.model}, photos from {args.photos}")
    print(f"{'run':<28}{'photos embedded':>16}{'reused':>8}{'seconds':>10}{'ratio':>8}")
    print(f"{'full build':<28}{full.embedded:>16}{full.reused:>8}{full.seconds:>10.2f}{1:>8.3f}")
    print(f"{f'update (+{added} photos)':<28}{update.embedded:>16}{update.reused:>8}{update.seconds:>10.2f}"
          f"{update.seconds / full.seconds:>8.3f}")
    print(f"\nNew photos: {added / count:.1%} of {count}. Neighbour pass over {len(embeddings)} photos: "
          f"{neighbour_seconds:.3f} s. Loading the model: {load_seconds:.2f} s. Full build per photo: {per_photo:.3f} s.")
    print(f"Expected update: model load + {added} × per photo + neighbour pass = {expected:.2f} s; "
          f"measured {update.seconds:.2f} s ({added / count:.1%} of the photos cost "
          f"{(update.seconds - load_seconds) / (full.seconds - load_seconds):.1%} of the full build, model load aside).")
    return 0


def link(photos: list[PhotoFile], folder: Path) -> None:
    for photo in photos:
        (folder / photo.relpath.replace("/", "__")).symlink_to(photo.path.resolve())


if __name__ == "__main__":
    sys.exit(main())
