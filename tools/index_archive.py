"""The index as a deploy archive for LOOKALIKE_INDEX_URL, without its thumbnails (they are in the bucket).

The archive is what `app/index_download.py` unpacks: the index file under its
own name and its (here empty) thumbnail folder. It is written the same way
each time for the same index (no owner names or times), and
it is named after its SHA-256, so publishing an unchanged index uploads
nothing and a new one never overwrites the archive a running app is pinned to.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

from core.index_file import thumbnail_dir_for

INDEX_FOLDER = "index/"


@dataclass(frozen=True)
class IndexArchive:
    """A written archive: where it is, its SHA-256 (for LOOKALIKE_INDEX_SHA256) and its object name."""

    path: Path
    sha256: str
    name: str  # under the prefix: index/<index name>-<first 16 hex digits of the SHA-256>.tar.gz


def write_index_archive(index_path: Path, folder: Path) -> IndexArchive:
    """Write the archive of `index_path` into `folder`; return where, its digest and its object name."""
    index_path = Path(index_path)
    target = Path(folder) / f"{index_path.stem}.tar.gz"
    with open(target, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as packed:
        with tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(index_path, arcname=index_path.name, filter=_reproducible)
            folder_entry = tarfile.TarInfo(thumbnail_dir_for(index_path).name)
            folder_entry.type, folder_entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder_entry)
    digest = hashlib.sha256()
    with open(target, "rb") as archive:
        while chunk := archive.read(1 << 20):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    return IndexArchive(target, sha256, f"{INDEX_FOLDER}{index_path.stem}-{sha256[:16]}.tar.gz")


def _reproducible(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """No user, group or time of this machine in the archive, so the same index gives the same bytes anywhere."""
    member.uid = member.gid = member.mtime = 0
    member.uname = member.gname = ""
    return member
