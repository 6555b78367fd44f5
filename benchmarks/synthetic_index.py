"""A valid Lookalike index of any size, made of random unit embeddings: for serving benchmarks and tests.

Every photo shares the same two tiny thumbnail files, so a 100k-photo index
costs no more disk than a 10-photo one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from precompute.index_file import FORMAT, FORMAT_VERSION, thumbnail_dir_for, write_index
from precompute.thumbnails import SIZES, thumbnail_name

DIM = 512


_PHOTOS_PER_CLUSTER = 50
_CLUSTER_SPREAD = 0.6  # noise norm against a unit centre: neighbours within a cluster score about 0.75
_BLOCK = 65536


def random_unit_vectors(n: int, dim: int = DIM, seed: int = 0, clustered: bool = False) -> np.ndarray:
    """`n` unit vectors, uniform on the sphere or clustered around n / 50 random centres (built in blocks)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
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


def write_synthetic_index(index_path: Path, n: int, k: int = 10, exact_neighbours: bool = True) -> Path:
    """Write an index of `n` fake photos to `index_path`, thumbnails beside it; return the path.

    With `exact_neighbours` off, neighbours are random ids (valid, but not the
    nearest): enough to time loading an index too big to search quickly.
    """
    from precompute.neighbours import top_k_neighbours  # needs torch; only the exact path does

    index_path = Path(index_path)
    thumbnail_dir = thumbnail_dir_for(index_path)
    thumbnail_dir.mkdir(parents=True, exist_ok=True)
    shared_hash = hashlib.sha1(b"lookalike synthetic thumbnail").hexdigest()
    thumbnails = {}
    for kind, side in SIZES.items():
        name = thumbnail_name(shared_hash, kind)
        Image.new("RGB", (side // 8, side // 8 * 3 // 4), (90, 120, 150)).save(thumbnail_dir / name, "JPEG")
        thumbnails[kind] = {"file": name, "width": side, "height": side * 3 // 4}
    embeddings = random_unit_vectors(n)
    if exact_neighbours:
        neighbours, scores = top_k_neighbours(embeddings, k)
    else:
        rng = np.random.default_rng(1)
        neighbours = ((np.arange(n)[:, None] + rng.integers(1, max(2, n), size=(n, k))) % n).astype(np.int32)
        scores = np.sort(rng.random((n, k), dtype=np.float32), axis=1)[:, ::-1].copy()
    photos = [
        {
            "id": i,
            "path": f"album-{i // 1000:03d}/photo-{i:06d}.jpg",
            "size": 3_000_000 + i,
            "mtime_ns": 1_700_000_000_000_000_000 + i,
            "sha1": hashlib.sha1(i.to_bytes(8, "little")).hexdigest(),
            "width": 4000,
            "height": 3000,
            "thumbnails": {kind: dict(entry) for kind, entry in thumbnails.items()},
        }
        for i in range(n)
    ]
    index = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "synthetic", "dim": DIM, "weights": "random unit vectors", "preprocessing": {}},
        "photo_root": str(index_path.parent / "no-originals"),
        "thumbnail_dir": thumbnail_dir.name,
        "photos": photos,
        "embeddings": embeddings,
        "neighbors": neighbours,
        "scores": scores,
        "skipped": [],
    }
    write_index(index, index_path)
    return index_path
