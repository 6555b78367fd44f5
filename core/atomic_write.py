"""Files written whole or not at all: a temporary file beside the target, renamed over it when complete.

Readers see the old file or the new, never a mix, and an interrupted write
(an error, Ctrl-C) leaves the old file as it was. Used for the index, its
thumbnails, exports, the ONNX cache and publish's record.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(
    path: Path, mode: str = "wb", *, owner_only: bool = False, durable: bool = True, **options: Any
) -> Iterator[IO]:
    """A temporary file beside `path` (`open`'s mode and options), renamed over `path` when the block ends.

    If the block raises, the temporary file is removed and `path` is left as it was. The file gets the
    permissions `open` would give it (0666 less the umask), or with `owner_only` mkstemp's 0600, for files
    only their owner should read. `durable` syncs it to disk before the rename, so that a crash cannot leave
    an empty file behind the new name; a cache or a thumbnail that can be made again skips the cost.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, mode, **options) as out:
            if not owner_only:
                permit_as_created(out.fileno())
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def permit_as_created(fd: int) -> None:
    """Give a temporary file the permissions `open` would have (0666 less the umask), not mkstemp's owner-only 0600.

    A web server often runs as another user than the one who built the index.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
