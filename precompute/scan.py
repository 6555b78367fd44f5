"""Step 1: find the photos in a folder.

The scan is purely about the file system: it never opens an image, so a
folder of a million photos is listed in seconds. Decoding problems are found
later, photo by photo, where one bad file cannot stop the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.index_file import MAX_PATH_PARTS, path_problem

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class PhotoFile:
    """One candidate photo: where it is, and what identifies this version of it."""

    path: Path
    relpath: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file that was left out of the index, and why."""

    relpath: str
    reason: str


@dataclass
class ScanResult:
    photos: list[PhotoFile]
    skipped: list[Skipped]
    ignored: int  # files that are not images by their name


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def scan_photos(root: Path) -> ScanResult:
    """List the image files under `root`, recursively, sorted by relative path.

    Hidden files and folders are left out. Symbolic links to folders are not
    followed, so a link loop cannot trap the scan; links to files are. A path
    an index cannot keep (index_file.MAX_PATH_PARTS, MAX_PATH_BYTES) is skipped
    with its reason, and folders are not entered past that depth.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"photo folder not found: {root}")
    photos: list[PhotoFile] = []
    skipped: list[Skipped] = []
    ignored = 0

    def on_error(err: OSError) -> None:
        where = Path(err.filename or root)
        skipped.append(Skipped(_relative(where, root), f"folder unreadable: {err.strerror}"))

    for folder, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        if dirnames and len(Path(folder, dirnames[0]).relative_to(root).parts) > MAX_PATH_PARTS:  # its photos: deeper still
            why = f"folder too deep: a photo in it would have over {MAX_PATH_PARTS} levels; not searched"
            skipped.extend(Skipped(_relative(Path(folder, d), root), why) for d in dirnames)
            dirnames[:] = []
        for name in filenames:
            if _is_hidden(name):
                continue
            path = Path(folder, name)
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            relpath = _relative(path, root)
            problem = path_problem(relpath)
            if problem:
                skipped.append(Skipped(relpath, problem))
                continue
            try:
                stat = path.stat()
            except OSError as err:
                skipped.append(Skipped(relpath, f"cannot read file: {err.strerror}"))
                continue
            if not path.is_file():
                ignored += 1
                continue
            photos.append(PhotoFile(path, relpath, stat.st_size, stat.st_mtime_ns))
    photos.sort(key=lambda p: p.relpath)
    skipped.sort(key=lambda s: s.relpath)
    return ScanResult(photos, skipped, ignored)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
