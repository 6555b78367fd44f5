"""Moving duplicates aside: each file ends up moved whole or left untouched, never half-moved, never deleted.

Within one filesystem a move is a rename, which is atomic. Across
filesystems it is a copy to a hidden temporary name in the destination
folder, flushed to disk, renamed to its real name, and only then is the
original unlinked. Whatever stops a move (a vanished or changed file, a
destination that cannot be written, Ctrl-C) before that rename leaves the
original where it was and removes the temporary copy; after it, the file is
whole at the destination. A file is never written over: one already at the
destination is left alone, and so is a photo that changed since the index was
built (its size or time differ), since the keep rule judged the indexed one.
Nor is a photo moved to a folder whose real path, links followed, is inside
the photo folder (DIR/sub a link back into it, say).
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.indexed_files import changed_since_indexed

_TEMPORARY = ".{name}.lookalike-move.tmp"


@dataclass(frozen=True)
class Move:
    """One photo to move: its path relative to the photo folder, and what the index recorded of it."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Outcome:
    move: Move
    moved: bool
    problem: str = ""  # why it was not moved (the file is untouched), or what went wrong after it was


class MoveRefused(Exception):
    """A photo was not moved; its file is as it was."""


def safe_relative(path: str) -> bool:
    """Whether an index's photo path stays inside its folder wherever it is joined (no `..`, not absolute)."""
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts and "\0" not in path


def move_photo(move: Move, photo_root: Path, destination: Path) -> str:
    """Move one photo from `photo_root` to the same relative path under `destination`; return a note or "".

    Raises MoveRefused, leaving the photo untouched. The note is non-empty
    when the photo was copied whole but its original could not be removed.
    """
    if not safe_relative(move.path):
        raise MoveRefused("its path in the index leads out of the photo folder")
    source, target = photo_root / move.path, destination / move.path
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise MoveRefused("it is no longer on disk") from None
    except OSError as err:
        raise MoveRefused(f"cannot read it: {err.strerror}") from None
    if changed_since_indexed(info, move.size, move.mtime_ns):
        raise MoveRefused("it changed since the index was built; index it again first")
    if os.path.lexists(target):
        raise MoveRefused(f"{target} already exists")
    if Path(os.path.realpath(target.parent)).is_relative_to(photo_root.resolve()):
        raise MoveRefused(f"{target.parent} leads back into the photo folder (a link, say)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MoveRefused(f"cannot create the folder {target.parent}: {err.strerror}") from None
    try:
        os.rename(source, target)
        return ""
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise MoveRefused(f"cannot move it: {err.strerror}") from None
    return _copy_then_unlink(source, target)


def _copy_then_unlink(source: Path, target: Path) -> str:
    """Across filesystems: copy under a temporary name, flush, rename into place, then remove the original."""
    temporary = target.with_name(_TEMPORARY.format(name=target.name))
    try:
        if source.is_symlink():
            os.symlink(os.readlink(source), temporary)
        else:
            with open(source, "rb") as reading, open(temporary, "xb") as writing:
                shutil.copyfileobj(reading, writing, 1 << 20)
                writing.flush()
                os.fsync(writing.fileno())
            shutil.copystat(source, temporary)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "appeared at the destination meanwhile")
        os.rename(temporary, target)
    except BaseException as err:  # Ctrl-C included: the original is untouched, the partial copy goes
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise MoveRefused(f"cannot copy it to {target.parent}: {err.strerror or err}") from None
        raise
    _sync_folder(target.parent)
    try:
        os.unlink(source)
    except OSError as err:
        return f"copied whole to {target}, but the original could not be removed: {err.strerror}"
    return ""


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable before the original is removed."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
