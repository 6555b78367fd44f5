"""A valid Lookalike index of any size, made of random unit embeddings: for serving benchmarks and tests.

Every photo shares the same two tiny thumbnail files, so a 100k-photo index
costs no more disk than a 10-photo one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from precompute.index_file import FORMAT, FORMAT_VERSION, write_index
from precompute.thumbnails import SIZES, thumbnail_name

DIM = 512


def random_unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered_unit_vectors(n: int, dim: int = DIM, seed: int = 0, per_cluster: int = 50) -> np.ndarray:
    """Unit vectors in n / per_cluster clusters, as real embeddings are: photos of one thing lie close.

    Cluster sizes vary (log-normal weights: some hold hundreds, some one or
    two) and so does their spread (cosine to the centre about 0.64 to 0.86),
    so some photos have close neighbours and some only distant ones. Built in
    chunks: memory is the result (n × dim × 4 bytes) and little more.
    """
    rng = np.random.default_rng(seed)
    clusters = max(1, n // per_cluster)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.lognormal(0.0, 1.0, clusters)
    members = rng.choice(clusters, size=n, p=weights / weights.sum())
    spread = rng.uniform(0.6, 1.2, clusters).astype(np.float32)
    vectors = np.empty((n, dim), np.float32)
    for start in range(0, n, 65536):
        chosen = members[start : start + 65536]
        noise = rng.standard_normal((len(chosen), dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        chunk = centres[chosen] + spread[chosen, None] * noise
        vectors[start : start + 65536] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def write_synthetic_index(index_path: Path, n: int, k: int = 10, exact_neighbours: bool = True) -> Path:
    """Write an index of `n` fake photos to `index_path`, thumbnails beside it; return the path.

    With `exact_neighbours` off, neighbours are random ids (valid, but not the
    nearest): enough to time loading an index too big to search quickly.
    """
    from precompute.neighbours import top_k_neighbours  # needs torch; only the exact path does

    index_path = Path(index_path)
    thumbnail_dir = index_path.with_name(index_path.stem + "-thumbnails")
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
