"""A valid Lookalike index of any size, made of random unit embeddings: for serving benchmarks and tests.

    python -m benchmarks.synthetic_index OUT.pkl --photos N [--dim D] [--clustered] [--neighbours random|exact|approx|auto]

Every photo shares the same two tiny thumbnail files, so a million-photo index
costs no more thumbnail disk than a 10-photo one. The per-photo columns are
made with numpy, never a dict per photo, and the embeddings are generated in
blocks into a scratch file beside OUT, so a million 1280-d photos need about
as much memory as one block. `--clustered` draws photos around shared centres
(real embeddings are clustered; uniform random ones are a worst case no real
collection has). `--neighbours exact`, `approx` or `auto` runs the pipeline's own neighbour step;
`random` gives valid but meaningless neighbours, enough to serve a collection
too large to search quickly.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from core.index_file import (
    THUMBNAIL_SIZES, Index, PhotoTable, new_index, path_columns, text_columns, thumbnail_dir_for, thumbnail_name, write_index,
)

DIM = 1280  # the default descriptor's (efficientnet-lite0)
_BLOCK = 65_536  # rows generated at a time
_PHOTOS_PER_CLUSTER = 50
_CLUSTER_SPREAD = 0.6  # noise norm against a unit centre: neighbours within a cluster score about 0.75
NEIGHBOUR_STEPS = ("random", "exact", "approx", "auto")  # random, or precompute.neighbours.search.METHODS


def random_unit_vectors(n: int, dim: int = DIM, seed: int = 0, clustered: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """`n` unit vectors, uniform on the sphere or clustered around n / 50 random centres; written into `out` if given."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32) if out is None else out
    centres = _unit(rng.standard_normal((max(1, n // _PHOTOS_PER_CLUSTER), dim), dtype=np.float32)) if clustered else None
    for start in range(0, n, _BLOCK):
        rows = min(_BLOCK, n - start)
        block = rng.standard_normal((rows, dim), dtype=np.float32)
        if centres is not None:
            block *= _CLUSTER_SPREAD / np.sqrt(dim, dtype=np.float32)
            block += centres[rng.integers(0, len(centres), rows)]
        out[start : start + rows] = _unit(block)
    return out


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


_CAMERAS = [b"Canon EOS 5D", b"NIKON D750", b"Apple iPhone 12", b""]


def synthetic_photos(n: int, thumbnail_hash: str) -> PhotoTable:
    """`n` photos of 4000 × 3000 in albums of 1,000, all with the thumbnails named after `thumbnail_hash`.

    Dates taken are spread over ten years at random (a date-sorted gallery is no path order); one photo in
    four has no EXIF, so its date is its file time and it has no camera.
    """
    rng = np.random.default_rng(2)
    ids = np.arange(n, dtype=np.int64)
    sides = [(side, side * 3 // 4) for side in THUMBNAIL_SIZES.values()]
    columns = {
        "id": ids,
        "size": 3_000_000 + ids,
        "mtime_ns": 1_700_000_000_000_000_000 + ids,
        "sha1": rng.integers(0, 256, (n, 20), dtype=np.uint8),
        "dimensions": np.tile(np.array([4000, 3000], np.int32), (n, 1)),
        "thumbnail_key": np.tile(np.frombuffer(bytes.fromhex(thumbnail_hash[:20]), np.uint8), (n, 1)),
        "thumbnail_dimensions": np.tile(np.array(sides, np.uint16), (n, 1, 1)),
    }
    columns.update(path_columns([f"album-{i // 1000:03d}/photo-{i:06d}.jpg".encode() for i in range(n)]))
    with_exif = ids % 4 != 3
    columns["taken"] = np.where(with_exif, 1_400_000_000 + rng.integers(0, 10 * 365 * 86_400, n), columns["mtime_ns"] // 10**9)
    columns["taken_source"] = with_exif.astype(np.uint8)
    columns["exif_tags"] = np.where(with_exif, rng.integers(20, 80, n), 0).astype(np.int32)
    columns.update(text_columns("camera", [_CAMERAS[i % 4] for i in range(n)]))
    return PhotoTable(columns)


def _thumbnails(thumbnail_dir: Path) -> str:
    """The two shared thumbnail files; returns the hash they are named after."""
    shared_hash = hashlib.sha1(b"lookalike synthetic thumbnail").hexdigest()
    thumbnail_dir.mkdir(parents=True, exist_ok=True)
    for kind, side in THUMBNAIL_SIZES.items():
        Image.new("RGB", (side // 8, side // 8 * 3 // 4), (90, 120, 150)).save(thumbnail_dir / thumbnail_name(shared_hash, kind), "JPEG")
    return shared_hash


def _random_neighbours(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    neighbours = ((np.arange(n)[:, None] + rng.integers(1, max(2, n), size=(n, k))) % n).astype(np.int32)
    scores = np.sort(rng.random((n, k), dtype=np.float32), axis=1)[:, ::-1].copy()
    return neighbours, scores


def write_synthetic_index(
    index_path: Path, n: int, k: int = 10, neighbours: str = "exact", dim: int = DIM, clustered: bool = False
) -> Path:
    """Write an index of `n` fake photos to `index_path`, thumbnails beside it; return the path.

    `neighbours` is one of NEIGHBOUR_STEPS: the pipeline's real neighbour step, or random ids.
    """
    if neighbours not in NEIGHBOUR_STEPS:
        raise ValueError(f"unknown neighbour step {neighbours!r}; choose one of {', '.join(NEIGHBOUR_STEPS)}")
    index_path = Path(index_path)
    thumbnail_dir = thumbnail_dir_for(index_path)
    photos = synthetic_photos(n, _thumbnails(thumbnail_dir))
    k = max(0, min(k, n - 1))
    with tempfile.TemporaryDirectory(dir=index_path.parent, prefix=".synthetic-") as scratch:
        embeddings = np.lib.format.open_memmap(Path(scratch) / "embeddings.npy", "w+", np.float32, (n, dim))
        random_unit_vectors(n, dim, clustered=clustered, out=embeddings)
        if neighbours == "random":
            found, scores = _random_neighbours(n, k)
        else:
            from precompute.neighbours.search import top_k  # needs torch; only the real step does

            found, scores = top_k(embeddings, k, neighbours)
        model = {"name": "synthetic", "dim": dim, "weights": "random unit vectors", "preprocessing": {},
                 "clustered": clustered, "neighbours": neighbours}
        index = new_index(photos, embeddings, found, scores, model=model, photo_root=str(index_path.parent / "no-originals"),
                          thumbnail_dir=thumbnail_dir.name, created="2026-01-01T00:00:00+00:00")
        write_index(index, index_path)
    return index_path


def duplicate_lists(groups: int, group_size: int = 2, singles: int = 0, score: float = 0.97) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists of `groups` groups of `group_size` near-duplicates (consecutive rows), then `singles` unlike rows.

    Each row lists its group-mates at `score` and then rows outside its group
    at 0.2, so the groups at any threshold above 0.2 up to `score` are exactly these.
    """
    n = groups * group_size + singles
    k = max(1, group_size)
    rows = np.arange(n)
    grouped = rows < groups * group_size
    first = np.where(grouped, rows - rows % group_size, rows)  # a group's first row; a single is its own
    size = np.where(grouped, group_size, 1)
    rank = np.arange(k)
    mates = first[:, None] + (rows[:, None] - first[:, None] + 1 + rank[None, :]) % size[:, None]  # the next members
    outside = (first[:, None] + size[:, None] + rank[None, :]) % n  # rows after the group
    is_mate = rank[None, :] < (size - 1)[:, None]
    neighbours = np.where(is_mate, mates, outside).astype(np.int32)
    return neighbours, np.where(is_mate, np.float32(score), np.float32(0.2)).astype(np.float32)


def ring_lists(size: int, k: int, score: float = 0.97) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour lists that make one group of `size` photos from short lists: each lists the next and the one before
    it on a ring (then the ones two away, ...), all at `score`, as chains of look-alikes do at a low threshold."""
    steps = np.array([(rank // 2 + 1) * (1 if rank % 2 == 0 else -1) for rank in range(k)])
    neighbours = (np.arange(size)[:, None] + steps[None, :]) % size
    return neighbours.astype(np.int32), np.full((size, k), score, np.float32)


def write_duplicates_index(index_path: Path, groups: int, group_size: int = 2, singles: int = 0, score: float = 0.97,
                           huge_group: int = 0) -> Path:
    """An index whose neighbour lists are `duplicate_lists(...)`, with meaningless 4-d embeddings: for the duplicates pages.

    With `huge_group`, its first rows are one more group of that many photos (`ring_lists`), the largest.
    """
    index_path = Path(index_path)
    neighbours, scores = duplicate_lists(groups, group_size, singles, score)
    if huge_group:
        ring, ring_scores = ring_lists(huge_group, neighbours.shape[1], score)
        neighbours, scores = np.concatenate([ring, neighbours + huge_group]), np.concatenate([ring_scores, scores])
    thumbnail_dir = thumbnail_dir_for(index_path)
    photos = synthetic_photos(len(neighbours), _thumbnails(thumbnail_dir))
    model = {"name": "synthetic", "dim": 4, "weights": "random unit vectors", "preprocessing": {}}
    index = new_index(photos, random_unit_vectors(len(neighbours), 4), neighbours, scores, model=model,
                      photo_root=str(index_path.parent / "no-originals"), thumbnail_dir=thumbnail_dir.name,
                      created="2026-01-01T00:00:00+00:00")
    write_index(index, index_path)
    return index_path


def as_format_1(index: Index) -> dict:
    """The same index as format version 1 held it: a dict per photo, every array in memory and inside the pickle.

    For comparisons with the format that came before, and tests of the upgrade from it.
    """
    old = {key: np.array(value) if isinstance(value, np.ndarray) else value for key, value in index.as_dict().items()}
    return {**old, "version": 1, "photos": list(index.photos)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synthetic_index", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="index file to write; thumbnails go beside it")
    parser.add_argument("--photos", type=int, required=True, help="number of photos")
    parser.add_argument("--dim", type=int, default=DIM, help="embedding dimension (default: %(default)s)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per photo (default: %(default)s)")
    parser.add_argument("--clustered", action="store_true", help="photos in clusters of about 50, as real embeddings are")
    parser.add_argument("--neighbours", choices=NEIGHBOUR_STEPS, default="exact",
                        help="the pipeline's neighbour step, or random valid ids (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.photos < 1 or args.dim < 1 or args.k < 1:
        parser.error("--photos, --dim and --k must be at least 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_synthetic_index(args.out, args.photos, args.k, args.neighbours, args.dim, args.clustered)
    print(f"{args.out}: {args.photos:,} photos, {args.dim}-d, {args.out.stat().st_size / 2**20:,.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
