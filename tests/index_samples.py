"""Small, well-formed indexes for tests of the index file and the app's startup checks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from core.index_file import PhotoTable, dump_index, new_index, thumbnail_name
from precompute.neighbours.exact import top_k_neighbours


def photo_record(i: int) -> dict:
    """The pipeline's record of photo i, thumbnails named as the pipeline names them."""
    sha1 = f"{i:040x}"
    return {"id": i, "path": f"p{i}.jpg", "sha1": sha1, "size": 1000, "width": 640, "height": 480, "mtime_ns": 0,
            "thumbnails": {kind: {"file": thumbnail_name(sha1, kind), "width": 320, "height": 240}
                           for kind in ("thumb", "preview")},
            "taken": 1_700_000_000 + 3600 * i if i % 2 else 0, "taken_source": "exif" if i % 2 else "file",
            "camera": "Canon EOS 5D" if i % 2 else "", "exif_tags": 12 * (i % 2)}


def without_metadata(record: dict) -> dict:
    """The record as an index written before the date taken, camera and EXIF tag count were recorded holds it."""
    return {key: value for key, value in record.items() if key not in ("taken", "taken_source", "camera", "exif_tags")}


def valid_index(n: int = 4, k: int = 2, dim: int = 8) -> dict:
    """A small, well-formed index: tests change one thing in it and expect exactly that refused."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(n, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    neighbours, scores = top_k_neighbours(embeddings, k)
    return new_index(
        [photo_record(i) for i in range(n)], embeddings, neighbours, scores,
        model={"name": "test", "dim": dim, "weights": "none", "preprocessing": {}},
        photo_root=".", thumbnail_dir="thumbs", created="2026-01-01T00:00:00+00:00",
    )


def index_file_bytes(index: dict) -> bytes:
    """What `write_index` would write, in memory: for archives and hand-made files."""
    out = io.BytesIO()
    dump_index(index, out)
    return out.getvalue()


def with_path(index: dict, row: int, path: str) -> dict:
    """The index with one photo's path changed."""
    records = list(index["photos"])
    records[row]["path"] = path
    return {**index, "photos": PhotoTable.from_records(records)}


class RunsCode:
    """Unpickling this runs a shell command, unless the unpickler refuses os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
