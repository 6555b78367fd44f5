"""Fetch the index and its thumbnails at boot, for hosts whose disk starts empty (Heroku).

`LOOKALIKE_INDEX_URL` names a .tar.gz made next to a built index, e.g.
`tar -C data -czf lookalike-data.tar.gz index.pkl index-thumbnails`. At boot it
is downloaded and unpacked beside `LOOKALIKE_INDEX`; the index is checked with
the restricted unpickler before anything is moved into place, and each piece
is moved with a rename, so a failed download leaves the previous files alone.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from precompute.index_file import IndexFileError, read_index

DOWNLOAD_TIMEOUT_S = 60


class IndexDownloadError(Exception):
    """The archive could not be fetched or is not a Lookalike index archive; the message says why."""


def fetch_index(url: str, index_path: Path) -> None:
    """Download the archive at `url` and put its index at `index_path`, its thumbnails beside it."""
    index_path = Path(index_path).resolve()
    index_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=index_path.parent, prefix=".download-") as work:
        archive = Path(work, "archive.tar.gz")
        _download(url, archive)
        unpacked = Path(work, "unpacked")
        _unpack(archive, unpacked)
        new_index = unpacked / index_path.name
        try:
            index = read_index(new_index)
        except IndexFileError as err:
            raise IndexDownloadError(f"{url} does not hold a usable {index_path.name}: {err}") from None
        new_thumbnails = (unpacked / str(index.get("thumbnail_dir", ""))).resolve()
        if new_thumbnails.parent != unpacked.resolve() or not new_thumbnails.is_dir():
            raise IndexDownloadError(f"{url} holds no thumbnail folder {index.get('thumbnail_dir')!r} beside the index")
        _replace_folder(new_thumbnails, index_path.parent / new_thumbnails.name, Path(work))
        os.replace(new_index, index_path)


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors; ValueError: a malformed URL
        raise IndexDownloadError(f"cannot download the index from {url}: {err}") from None


def _unpack(archive: Path, folder: Path) -> None:
    """Unpack with tarfile's 'data' filter: no paths outside `folder`, no links out, no device files."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise IndexDownloadError(f"the index archive cannot be unpacked: {err}") from None


def _replace_folder(new: Path, target: Path, scratch: Path) -> None:
    """Swap `new` in for `target` with renames; the old folder goes to `scratch` and is deleted with it."""
    if target.exists():
        os.replace(target, scratch / "previous-thumbnails")
    os.replace(new, target)
