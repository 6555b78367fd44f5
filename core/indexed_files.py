"""A photo's file as the index names it: opened only inside its folder, and known to be the file indexed.

One rule for every place a file leaves this machine or is moved by what the
index says: the web app serving originals and thumbnails, `publish` uploading
them, `duplicates --move-to` moving photos. Torch-free, so the web app imports it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


def open_inside(folder: Path, relative: str, excluded: Path | None = None) -> BinaryIO | None:
    """`folder / relative` opened for reading if the file opened is a regular file inside `folder` (and not
    inside `excluded`, resolved too), else None.

    `folder` must be resolved (absolute, no links). Decided on the opened
    file, on every call: a path checked once and opened later could have been
    swapped for a symlink in between. The file's real path must lie inside
    `folder` and name the very file that was opened (same device and inode), so
    a swap during the check is caught too.
    """
    path = folder / relative
    try:
        # O_NONBLOCK: a FIFO put in a photo's place must not hang the worker; regular files ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    try:
        opened = os.fstat(fd)
        real = Path(os.path.realpath(path))
        if stat.S_ISREG(opened.st_mode) and real.is_relative_to(folder) and not within(real, excluded):
            named = os.stat(real, follow_symlinks=False)
            if (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
                return os.fdopen(fd, "rb")
    except OSError:
        pass
    os.close(fd)
    return None


def within(path: Path, folder: Path | None) -> bool:
    """Whether `path` lies inside `folder`; never when there is no folder."""
    return folder is not None and path.is_relative_to(folder)


def changed_since_indexed(info: os.stat_result, size: int, mtime_ns: int) -> bool:
    """Whether the file is no longer the one indexed: its size or time differ from the index's record of them.

    An index that recorded no time (0) is judged by size alone.
    """
    return info.st_size != size or (mtime_ns != 0 and info.st_mtime_ns != mtime_ns)
