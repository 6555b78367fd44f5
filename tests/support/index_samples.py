"""Small, well-formed indexes for tests of the index file and the app's startup checks."""

from __future__ import annotations

from dataclasses import replace

import io
import os
from pathlib import Path

import numpy as np

from core.index_file import Index, PhotoTable, dump_index, new_index, read_index, thumbnail_dir_for, thumbnail_name, write_index
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


def valid_index(n: int = 4, k: int = 2, dim: int = 8) -> Index:
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


def index_file_bytes(index: Index | dict) -> bytes:
    """What `write_index` would write, in memory: for archives and hand-made files."""
    out = io.BytesIO()
    dump_index(index, out)
    return out.getvalue()


def with_path(index: Index, row: int, path: str) -> Index:
    """The index with one photo's path changed."""
    records = list(index.photos)
    records[row]["path"] = path
    return replace(index, photos=PhotoTable.from_records(records))


def index_with_paths(index_path: Path, photo_root: str, paths: dict[int, str]) -> Index:
    """The index at `index_path` with some photos' paths changed, its photos in `photo_root`, thumbnails in
    `index-thumbnails`."""
    index = read_index(index_path)
    for row, path in paths.items():
        index = with_path(index, row, path)
    return replace(index, photo_root=photo_root, thumbnail_dir="index-thumbnails")


def local_index_of(index_path: Path, folder: Path, files: dict[str, bytes]) -> Path:
    """A locally built copy of the index at `index_path` whose photos 0, 1, … are `files`, in folder/photos."""
    (folder / "photos").mkdir(parents=True)
    for name, data in files.items():
        (folder / "photos" / name).write_bytes(data)
    path = folder / "index.pkl"
    write_index(index_with_paths(index_path, str(folder / "photos"), dict(enumerate(files))), path)
    thumbnail_dir_for(path).symlink_to(thumbnail_dir_for(index_path))
    return path


class RunsCode:
    """Unpickling this runs a shell command, unless the unpickler refuses os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
