"""Small, well-formed index dicts for tests of the index file and the app's startup checks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from precompute.index_file import FORMAT, FORMAT_VERSION
from precompute.neighbours import top_k_neighbours


def valid_index(n: int = 4, k: int = 2, dim: int = 8) -> dict:
    """A small, well-formed index: tests change one thing in it and expect exactly that refused."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    neighbours, scores = top_k_neighbours(embeddings, k)
    thumb = {"file": "abc-thumb.jpg", "width": 320, "height": 240}
    photos = [
        {"id": i, "path": f"p{i}.jpg", "sha1": f"{i:040x}", "size": 1000, "width": 640, "height": 480, "mtime_ns": 0,
         "thumbnails": {"thumb": thumb, "preview": {**thumb, "file": "abc-preview.jpg"}}}
        for i in range(n)
    ]
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "created": "2026-01-01T00:00:00+00:00",
        "model": {"name": "test", "dim": dim, "weights": "none", "preprocessing": {}},
        "photo_root": ".", "thumbnail_dir": "thumbs", "photos": photos,
        "embeddings": embeddings, "neighbors": neighbours, "scores": scores, "skipped": [],
    }


class RunsCode:
    """Unpickling this runs a shell command, unless the unpickler refuses os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
