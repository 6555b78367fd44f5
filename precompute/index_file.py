"""Step 5: the index file, one pickle holding everything the web app needs.

Writing is atomic (temporary file, fsync, rename), so an interrupted run
leaves the previous index intact. Reading uses a restricted unpickler that
allows only builtins and plain numpy arrays: a pickle can run code when
loaded, and an index file may come from anywhere.

This module needs only numpy, so the web app can use it without torch.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "lookalike-index"
FORMAT_VERSION = 1
# Similar photos kept per photo. A photo page shows them all: an index with
# millions of columns would render a page of a gigabyte.
MAX_K = 1000

# Folders photos and thumbnails are never served from, whatever an index or the
# environment says: the first with everything under them, the second only as
# they are (a photo folder may well live under /home, /srv or /var/lib/lookalike).
SYSTEM_FOLDERS = tuple(
    Path(p) for p in ("/etc", "/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot",
                      "/root", "/run", "/var/log", "/var/run")
)
TOO_BROAD_FOLDERS = frozenset(
    Path(p) for p in ("/", "/home", "/var", "/var/lib", "/opt", "/srv", "/tmp", "/mnt", "/media")
)

# What pickling a dict of builtins and numpy arrays refers to, in numpy 1 and 2.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def thumbnail_dir_for(index_path: Path) -> Path:
    """Where an index's thumbnails live: `data/index.pkl` keeps them in `data/index-thumbnails/`."""
    return index_path.with_name(index_path.stem + "-thumbnails")


def system_folder(folder: Path) -> bool:
    """Whether `folder` (resolved: no symlinks, no `..`) is one photos must never be served from."""
    return folder in TOO_BROAD_FOLDERS or any(folder.is_relative_to(system) for system in SYSTEM_FOLDERS)


class IndexFileError(Exception):
    """The index file is missing, damaged, foreign or of an unknown version."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise IndexFileError(f"refusing to load {module}.{name}: an index holds only builtins and numpy arrays")


def write_index(index: dict, path: Path) -> None:
    """Write `index` to `path` atomically: readers see the old file or the new, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            pickle.dump(index, out, protocol=5)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_index(path: Path) -> dict:
    """Load and validate an index file; raise IndexFileError with a clear reason."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexFileError(f"index file not found: {path}") from None
    except OSError as err:
        raise IndexFileError(f"cannot read index file {path}: {err.strerror or err}") from None
    try:
        index = _RestrictedUnpickler(io.BytesIO(data)).load()
    except IndexFileError as err:
        raise IndexFileError(f"{path} is not a Lookalike index: {err}") from None
    except Exception as err:  # truncated or garbage pickles raise many types
        raise IndexFileError(f"{path} is damaged or not a Lookalike index ({type(err).__name__}: {err})") from None
    try:
        validate_index(index)
    except IndexFileError as err:
        raise IndexFileError(f"{path}: {err}") from None
    return index


def validate_index(index: Any) -> None:
    """Check the format, version, shapes and dtypes the web app relies on."""
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise IndexFileError("not a Lookalike index (no format marker)")
    version = index.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise IndexFileError(
            f"index format version {version!r} is not supported (this Lookalike reads version {FORMAT_VERSION}); "
            "rebuild the index with this version of precompute"
        )
    photos = index.get("photos")
    if not isinstance(photos, list):
        raise IndexFileError("'photos' must be a list")
    for row, photo in enumerate(photos):
        problem = _photo_problem(photo)
        if problem:
            raise IndexFileError(f"photo {row}: {problem}")
    ids = [p["id"] for p in photos]
    if len(set(ids)) != len(ids):
        raise IndexFileError("every photo needs a unique 'id'")
    n = len(photos)
    embeddings = _array(index, "embeddings", np.float32, 2)
    neighbours = _array(index, "neighbors", np.int32, 2)
    scores = _array(index, "scores", np.float32, 2)
    if embeddings.shape[0] != n:
        raise IndexFileError(f"'embeddings' has {embeddings.shape[0]} rows for {n} photos")
    if neighbours.shape[0] != n or scores.shape != neighbours.shape:
        raise IndexFileError(f"'neighbors' {neighbours.shape} and 'scores' {scores.shape} must both be {n}×k")
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= n):
        raise IndexFileError("'neighbors' refers to photos that are not in the index")
    if neighbours.shape[1] > MAX_K:
        raise IndexFileError(f"'neighbors' keeps {neighbours.shape[1]} similar photos per photo; at most {MAX_K} are served")
    if not isinstance(index.get("model"), dict):
        raise IndexFileError("'model' must describe the embedding model")
    if "expansion_neighbors" in index or "expansion_scores" in index:  # αQE's first pass, for updates
        first = _array(index, "expansion_neighbors", np.int32, 2)
        if first.shape[0] != n or _array(index, "expansion_scores", np.float32, 2).shape != first.shape:
            raise IndexFileError(f"'expansion_neighbors' and 'expansion_scores' must both be {n}×n")
        if first.size and (first.min() < 0 or first.max() >= n):
            raise IndexFileError("'expansion_neighbors' refers to photos that are not in the index")
    thumbnail_dir = index.get("thumbnail_dir")
    if not isinstance(thumbnail_dir, str) or not _plain_name(thumbnail_dir):
        raise IndexFileError(f"'thumbnail_dir' must be a folder name beside the index, not {thumbnail_dir!r}")
    if not isinstance(index.get("photo_root"), str):
        raise IndexFileError("'photo_root' must name the folder of the original photos")


# What each photo record must hold, and of which type: the pages use all of it.
_PHOTO_FIELDS = {"id": int, "path": str, "sha1": str, "size": int, "width": int, "height": int, "thumbnails": dict}
_THUMBNAIL_FIELDS = {"file": str, "width": int, "height": int}


def _photo_problem(photo: Any) -> str | None:
    if not isinstance(photo, dict):
        return "not a dict"
    for key, kind in _PHOTO_FIELDS.items():
        if not isinstance(photo.get(key), kind):
            return f"'{key}' must be a {kind.__name__}"
    if photo["id"] < 0:
        return "'id' must not be negative"
    for kind in ("thumb", "preview"):
        entry = photo["thumbnails"].get(kind)
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), t) for k, t in _THUMBNAIL_FIELDS.items()):
            return f"thumbnail '{kind}' must have a file name, width and height"
        if not _plain_name(entry["file"]):
            return f"thumbnail '{kind}' must be a plain file name, not {entry['file']!r}"
    return None


def _plain_name(name: str) -> bool:
    """A file or folder name with no way out of its folder: no separators, not hidden, not `.` or `..`."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def _array(index: dict, key: str, dtype: type, ndim: int) -> np.ndarray:
    value = index.get(key)
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim:
        raise IndexFileError(f"'{key}' must be a {ndim}-d {np.dtype(dtype).name} array")
    return value
