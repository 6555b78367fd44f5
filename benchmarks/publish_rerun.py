"""What a rerun of `tools.publish --originals` costs when nothing changed: with its record, and without.

    .venv/bin/python -m benchmarks.publish_rerun [--photos N] [--rounds 3]

N photo-like 12 MP JPEGs (distinct files, a few MB each) are indexed with the
real pipeline and published, originals included, to moto's S3 server on
127.0.0.1. Then, interleaved, in the same process: a rerun with the record
beside the index (files unchanged since they were hashed are not read), and
the baseline, the same rerun without the record (every original is read,
stripped of its location and hashed to compare with the listing). Both upload
nothing. The files are in the page cache for both, so the baseline is the
cheapest it can be: a collection larger than memory is read from disk.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from precompute.build import BuildOptions, build_index
from tests.support.s3_server import TEST_CREDENTIALS, running_s3
from tests.support.tiny_index import write_photo
from tools import publish
from tools.publish_record import record_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="12 MP photos (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each counts (default: %(default)s)")
    args = parser.parse_args()
    os.environ.update(TEST_CREDENTIALS)  # moto's, for the boto3 client publish makes (this process is the benchmark)
    with tempfile.TemporaryDirectory(prefix="lookalike-publish-") as tmp, running_s3() as s3:
        photos, index = Path(tmp, "photos"), Path(tmp, "index.pkl")
        total_bytes = _write_photos(photos, args.photos)
        build_index(photos, index, BuildOptions(model="efficientnet-lite0"))
        s3.create_bucket("media")
        command = [str(index), "--to", "s3://media/site/", "--endpoint-url", s3.url, "--originals"]
        first = _timed(command)
        best = {"with the record": float("inf"), "without (hash every file)": float("inf")}
        for _ in range(args.rounds):
            best["with the record"] = min(best["with the record"], _timed(command))
            record = record_path(index).read_bytes()
            record_path(index).unlink()
            best["without (hash every file)"] = min(best["without (hash every file)"], _timed(command))
            record_path(index).write_bytes(record)
    print(f"\nRerun of publish --originals, nothing changed: {args.photos} originals of 12 MP, "
          f"{total_bytes / 2**20:.0f} MiB, and their {2 * args.photos} thumbnails; moto on 127.0.0.1")
    print(f"first run (uploads everything): {first:.2f} s")
    baseline = best["without (hash every file)"]
    for name, seconds in best.items():
        print(f"rerun {name:<28}{seconds:>8.2f} s{baseline / seconds:>8.1f}× the baseline's speed")
    hashing = baseline - best["with the record"]
    print(f"reading, stripping and hashing what the record spares: {1000 * hashing / args.photos:.1f} ms per original "
          f"({total_bytes / 2**20 / hashing:.0f} MiB/s from the page cache)")
    return 0


def _write_photos(folder: Path, count: int) -> int:
    """One 4000×3000 photo, then `count` files of it, each with its own JPEG comment so their contents differ."""
    folder.mkdir()
    template = folder / "template.jpg"
    write_photo(template, 4000, 3000, (150, 120, 90))
    data = template.read_bytes()
    template.unlink()
    for i in range(count):
        comment = f"photo {i}".encode()
        segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        (folder / f"photo-{i:05d}.jpg").write_bytes(data[:2] + segment + data[2:])
    return sum(photo.stat().st_size for photo in folder.iterdir())


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = publish.main(command)
    if status != 0:
        raise SystemExit(f"publish exited {status}")
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
