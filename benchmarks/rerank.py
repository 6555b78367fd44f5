"""What `--rerank local` costs: the same photos built with `--rerank off` and `local`, then 1 % more added.

    .venv/bin/python -m benchmarks.rerank [--photos DIR] [--count N] [--fraction 0.01]

All in one process, on the same photos: CPU time of each full build (this
process and its decoding workers), the evidence side file's size per photo,
the pairs verified and their cost, and an update that adds `fraction`·N
photos: how many pairs it verifies against the full build. The last lines
project the extra cost to a million photos: extraction grows with the
photos, and verification with the pairs, which grow with the photos too
(CANDIDATES per photo, fewer where two photos list each other).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from benchmarks.incremental import link
from precompute.build import BuildOptions, build_index
from precompute.evidence import evidence_path_for
from precompute.rerank import CANDIDATES
from precompute.scan import scan_photos
from tests.support.datasets import IMAGENET_SAMPLES as IMAGENET
from tools.evaluate.__main__ import cpu_time
MILLION = 1_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=IMAGENET, help="photo folder (default: %(default)s)")
    parser.add_argument("--count", type=int, default=400, help="photos in the full builds (default: %(default)s)")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of photos added in the update (default: %(default)s)")
    parser.add_argument("--model", default="efficientnet-lite0")
    args = parser.parse_args()
    if not args.photos.is_dir():
        print(f"error: photo folder not found: {args.photos}", file=sys.stderr)
        return 1
    photos = scan_photos(args.photos).photos
    added = max(1, math.ceil(args.count * args.fraction))
    if args.count + added > len(photos):
        print(f"error: {args.photos} has {len(photos)} photos, fewer than {args.count} + {added}", file=sys.stderr)
        return 1
    options = BuildOptions(model=args.model, rerank="local")
    with tempfile.TemporaryDirectory(prefix="lookalike-rerank-") as tmp:
        folder = Path(tmp, "photos")
        folder.mkdir()
        link(photos[: args.count], folder)
        build_index(folder, Path(tmp, "warm", "index.pkl"), BuildOptions(model=args.model, rerank="off"))  # ONNX export
        cpu = {}
        for mode in ("off", "local"):
            started = cpu_time()
            report = build_index(folder, Path(tmp, mode, "index.pkl"), BuildOptions(model=args.model, rerank=mode))
            cpu[mode] = cpu_time() - started
        full = report
        evidence_bytes = evidence_path_for(full.index_path).stat().st_size / full.indexed
        link(photos[args.count : args.count + added], folder)
        started = cpu_time()
        update = build_index(folder, full.index_path, options)
        update_cpu = cpu_time() - started

    n = full.indexed
    extraction = (cpu["local"] - cpu["off"] - full.rerank_seconds) / n
    per_pair = full.rerank_seconds / full.pairs_verified
    pairs_per_photo = full.pairs_verified / n
    print(f"\n--rerank local against off, {args.model}, {n} photos from {args.photos} (CPU seconds, this process and its workers)")
    print(f"{'build':<34}{'CPU s':>9}{'ms/photo':>10}{'× off':>7}")
    for mode in ("off", "local"):
        print(f"{'full, --rerank ' + mode:<34}{cpu[mode]:>9.1f}{1000 * cpu[mode] / n:>10.1f}{cpu[mode] / cpu['off']:>7.2f}")
    print(f"{f'update, +{added} photos, local':<34}{update_cpu:>9.1f}{'':>10}{update_cpu / cpu['local']:>7.2f}")
    print(f"\nEvidence side file: {evidence_bytes / 1024:.1f} KiB a photo. Extraction: {1000 * extraction:.1f} ms CPU a photo.")
    print(f"Verification: {full.pairs_verified:,} pairs ({pairs_per_photo:.1f} a photo, up to {CANDIDATES} candidates each), "
          f"{1000 * per_pair:.2f} ms CPU a pair, {full.rerank_seconds:.1f} s in all.")
    print(f"Update: {update.pairs_verified:,} pairs verified, {update.pairs_reused:,} reused: "
          f"{update.pairs_verified / full.pairs_verified:.1%} of the full build's pairs.")
    hours = MILLION * (extraction + pairs_per_photo * per_pair) / 3600
    print(f"Projected to {MILLION:,} photos: {hours:.0f} CPU hours of extraction and verification on top of --rerank off, "
          f"{MILLION * evidence_bytes / 2**30:.0f} GiB of evidence.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
