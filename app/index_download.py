"""Fetch the index and its thumbnails at boot, for hosts whose disk starts empty (Heroku).

`LOOKALIKE_INDEX_URL` names a .tar.gz made next to a built index, e.g.
`tar -C data -czf lookalike-data.tar.gz index.pkl index-thumbnails`. At boot it
is downloaded beside `LOOKALIKE_INDEX` and unpacked there.

The archive is data from the network, so it decides nothing about where files
go. Of its members only two things are taken: the file named like the index
(`index.pkl`) and the flat thumbnail folder named after it, the way precompute
names it (`index-thumbnails/`, see `thumbnail_dir_for`), holding only files
named as the format names thumbnails (`is_thumbnail_name`). Those two, and nothing
else, are replaced, each with a rename, after the index has passed the
restricted unpickler; a failed download leaves the previous files alone. When
thumbnails are served from object storage (LOOKALIKE_MEDIA_URL), only the
index is taken: the archive may hold it alone.
Download size, unpacked size (every byte of the tar stream, its headers
too: see app/tar_headers.py) and time are capped, an optional SHA-256 is
checked before anything is unpacked, and plain http:// is refused except from
this machine.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

from app.links import loopback_host
from app.tar_headers import CheckedTarStream, TarRefused
from core.index_file import IndexFileError, is_thumbnail_name, read_index, thumbnail_dir_for

_CHUNK = 1 << 20
_TAR_HEADER = 512  # bytes each member costs on disk at least: counted, so millions of empty files hit the cap


class IndexDownloadError(Exception):
    """The archive could not be fetched or is not a Lookalike index archive; the message says why."""


@dataclass(frozen=True)
class DownloadLimits:
    """Caps on one boot-time download (LOOKALIKE_INDEX_MAX_MB, …, read by app.settings)."""

    download_mb: float = 1024
    unpacked_mb: float = 4096
    seconds: float = 120
    sha256: str | None = None  # expected digest of the archive, lower-case hex


def fetch_index(url: str, index_path: Path, limits: DownloadLimits = DownloadLimits(), *, with_thumbnails: bool = True) -> None:
    """Download the archive at `url`; put its index at `index_path` and, `with_thumbnails`, its thumbnails
    in `thumbnail_dir_for` it (without, any thumbnails in the archive are skipped, never unpacked)."""
    _check_scheme(url)
    deadline = time.monotonic() + limits.seconds
    index_path = Path(index_path).resolve()
    index_path.parent.mkdir(parents=True, exist_ok=True)
    thumbnails = thumbnail_dir_for(index_path)
    with tempfile.TemporaryDirectory(dir=index_path.parent, prefix=".download-") as work:
        archive = Path(work, "archive.tar.gz")
        _download(url, archive, limits, deadline)
        unpacked = Path(work, "unpacked")
        _unpack(archive, unpacked, index_path.name, thumbnails.name if with_thumbnails else None, limits, deadline)
        new_index = unpacked / index_path.name
        try:
            index = read_index(new_index)
        except IndexFileError as err:
            raise IndexDownloadError(f"{url} does not hold a usable {index_path.name}: {err}") from None
        if not with_thumbnails:
            os.replace(new_index, index_path)
            return
        if index.thumbnail_dir != thumbnails.name:
            raise IndexDownloadError(
                f"the index in {url} keeps its thumbnails in {index.thumbnail_dir!r}, but an index named "
                f"{index_path.name} keeps them in {thumbnails.name!r}: build it with --out .../{index_path.name}"
            )
        new_thumbnails = unpacked / thumbnails.name
        if not new_thumbnails.is_dir():
            raise IndexDownloadError(f"{url} holds no thumbnail folder {thumbnails.name!r} beside the index")
        _replace_folder(new_thumbnails, thumbnails, Path(work))
        os.replace(new_index, index_path)


def _check_scheme(url: str) -> None:
    """https, s3, or http from this machine only: an index is code-adjacent data, and plain http can be rewritten in transit."""
    parts = urlsplit(url)
    if parts.scheme in ("https", "s3") or (parts.scheme == "http" and loopback_host(parts.hostname)):
        return
    raise IndexDownloadError(
        f"refusing to download the index from {url}: LOOKALIKE_INDEX_URL must be an https:// or s3:// URL "
        "(plain http:// only from this machine: 127.0.0.1, ::1 or localhost)"
    )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect must meet the same rule as the URL itself: no hop down to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _check_scheme(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, target: Path, limits: DownloadLimits, deadline: float) -> None:
    if url.startswith("s3://"):
        _download_s3(url, target, limits, deadline)
        return
    opener = urllib.request.build_opener(_CheckedRedirects)
    try:
        with opener.open(url, timeout=max(1.0, deadline - time.monotonic())) as response:
            # read1: whatever has arrived, so a slow drip still meets the deadline
            _save(iter(lambda: response.read1(_CHUNK), b""), response.headers.get("Content-Length"), url, target,
                  limits, deadline)
    except IndexDownloadError:
        raise
    except TimeoutError:
        raise IndexDownloadError(_over_time(limits)) from None
    except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors; ValueError: a malformed URL
        raise IndexDownloadError(f"cannot download the index from {url}: {err}") from None


def _download_s3(url: str, target: Path, limits: DownloadLimits, deadline: float) -> None:
    """`s3://BUCKET/KEY`, read with boto3 and the standard AWS credentials: the archive can stay in a private bucket."""
    from core.bucket import BucketError, BucketPlace, describe, s3_client

    try:
        bucket, key = BucketPlace.of_object(url, what="LOOKALIKE_INDEX_URL")
        response = s3_client().get_object(Bucket=bucket.bucket, Key=key)
        body = response["Body"]
        try:
            _save(body.iter_chunks(_CHUNK), str(response.get("ContentLength", "")), url, target, limits, deadline)
        finally:
            body.close()
    except (IndexDownloadError, TimeoutError):
        raise
    except BucketError as err:
        raise IndexDownloadError(f"cannot download the index from {url}: {err}") from None
    except Exception as err:  # noqa: BLE001 - boto's and the network's errors, in one line
        raise IndexDownloadError(f"cannot download the index from {url}: {describe(err, url[5:].partition('/')[0])}") from None


def _save(chunks: Iterator[bytes], announced: str | None, url: str, target: Path, limits: DownloadLimits,
          deadline: float) -> None:
    """Write the chunks to `target` within the size and time caps, then check the SHA-256 if one is expected."""
    cap = int(limits.download_mb * 2**20)
    if announced and announced.isdigit() and int(announced) > cap:
        raise IndexDownloadError(_over_download_cap(url, limits))
    digest = hashlib.sha256()
    received = 0
    with open(target, "wb") as out:
        for chunk in chunks:
            received += len(chunk)
            if received > cap:
                raise IndexDownloadError(_over_download_cap(url, limits))
            _check_time(deadline, limits)
            digest.update(chunk)
            out.write(chunk)
    if limits.sha256 is not None and digest.hexdigest() != limits.sha256:
        raise IndexDownloadError(
            f"the archive from {url} has SHA-256 {digest.hexdigest()}, not the {limits.sha256} "
            "LOOKALIKE_INDEX_SHA256 expects; nothing was unpacked"
        )


def _over_download_cap(url: str, limits: DownloadLimits) -> str:
    return f"the archive at {url} is over LOOKALIKE_INDEX_MAX_MB={limits.download_mb:g} MB; nothing was unpacked"


def _over_time(limits: DownloadLimits) -> str:
    return f"fetching the index took over LOOKALIKE_INDEX_TIMEOUT_S={limits.seconds:g} s; gave up"


def _check_time(deadline: float, limits: DownloadLimits) -> None:
    if time.monotonic() > deadline:
        raise IndexDownloadError(_over_time(limits))


def _unpack(
    archive: Path, folder: Path, index_name: str, thumbnails_name: str | None, limits: DownloadLimits, deadline: float
) -> None:
    """Unpack only the index file and the thumbnail files (none without `thumbnails_name`), within the caps.

    Every member must pass tarfile's 'data' filter (no absolute paths, no way
    out, no device files), or the archive is refused; of those, other members
    (a README, `./`, links, nested folders) are skipped.
    """
    cap = int(limits.unpacked_mb * 2**20)
    total = 0
    folder.mkdir()
    if thumbnails_name is not None:
        (folder / thumbnails_name).mkdir()

    def within_caps(read: int) -> None:  # every byte of the tar stream, headers included
        if read > cap:
            raise IndexDownloadError(_over_unpacked_cap(limits))
        _check_time(deadline, limits)

    try:
        with _decompressed(archive) as raw, tarfile.open(fileobj=CheckedTarStream(raw, within_caps), mode="r|") as tar:
            for member in tar:  # a stream: members are read once, in order, never all held
                _check_time(deadline, limits)
                total += _TAR_HEADER + max(0, member.size)
                if total > cap:  # known from the header: stop before writing the member
                    raise IndexDownloadError(_over_unpacked_cap(limits))
                tarfile.data_filter(member, str(folder))
                if member.isfile() and _wanted(member.name, index_name, thumbnails_name):
                    member.name = PurePosixPath(member.name.removeprefix("./")).as_posix()
                    tar.extract(member, folder, filter="data")
    except TarRefused as refused:
        raise IndexDownloadError(f"the index archive cannot be unpacked: refusing {refused}") from None
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as err:  # EOFError: a truncated gzip stream
        raise IndexDownloadError(f"the index archive cannot be unpacked: {err}") from None


def _decompressed(archive: Path) -> BinaryIO:
    """The archive's tar stream, decompressed as it is read (gzip, bzip2, xz or none, as `tar` accepts)."""
    with open(archive, "rb") as file:
        magic = file.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(archive, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(archive, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(archive, "rb")
    return open(archive, "rb")


def _over_unpacked_cap(limits: DownloadLimits) -> str:
    return (f"the index archive unpacks to over LOOKALIKE_INDEX_MAX_UNPACKED_MB={limits.unpacked_mb:g} MB; "
            "stopped before writing more")


def _wanted(name: str, index_name: str, thumbnails_name: str | None) -> bool:
    """The index file, or a file directly inside the thumbnail folder named as the index format names
    thumbnails (`<hash>-thumb.jpg`), at the top of the archive (or under `./`)."""
    parts = PurePosixPath(name.removeprefix("./")).parts
    return parts == (index_name,) or (len(parts) == 2 and parts[0] == thumbnails_name and is_thumbnail_name(parts[1]))


def _replace_folder(new: Path, target: Path, scratch: Path) -> None:
    """Swap `new` in for `target` with renames; the old folder goes to `scratch` and is deleted with it."""
    if target.exists() or target.is_symlink():
        os.replace(target, scratch / "previous-thumbnails")
    os.replace(new, target)
