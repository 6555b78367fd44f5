"""Step 1: find the photos in a folder.

The scan is purely about the file system: it never opens an image, so a
folder of a million photos is listed in seconds. Decoding problems are found
later, photo by photo, where one bad file cannot stop the others.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.formats import IMAGE_SUFFIXES, UNSUPPORTED_IMAGE_SUFFIXES, VIDEO_SUFFIXES
from core.index_file import MAX_PATH_PARTS, path_problem


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
    ignored: int  # other files, neither photos, videos nor images of a format Lookalike does not read
    videos: int = 0  # counted, never indexed
    live_photo_videos: int = 0  # of those, the motion half of a Live Photo: a video beside a photo of the same name
    unsupported: Counter = field(default_factory=Counter)  # images Lookalike cannot read, by extension (".psd": 2)


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
    videos: list[Path] = []
    unsupported: Counter = Counter()

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
            suffix = path.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                videos.append(path)
                continue
            if suffix in UNSUPPORTED_IMAGE_SUFFIXES:
                unsupported[suffix] += 1
                continue
            if suffix not in IMAGE_SUFFIXES:
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
    stems = {(photo.path.parent, photo.path.stem.lower()) for photo in photos}
    live = sum((video.parent, video.stem.lower()) in stems for video in videos)
    return ScanResult(photos, skipped, ignored, len(videos), live, unsupported)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
