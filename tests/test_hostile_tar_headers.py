"""LOOKALIKE_INDEX_URL archives whose tar headers are the attack: huge long names, long or slow pax headers.

tarfile reads those headers whole before any member cap applies (255 kB
took a booting worker to 2.1 GB), and Python 3.11.7 parses a long pax header
in quadratic time (CVE-2024-6232). Each is refused in one line before its
bytes are read; archives with real long names, as tar and tarfile write
them, still load.
"""

from __future__ import annotations

from dataclasses import replace

import gzip
import io
import os
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from app.index_download import DownloadLimits, IndexDownloadError, fetch_index
from app.tar_headers import SPECIAL_HEADER_LIMIT
from tools.index_archive import write_index_archive
from core.index_file import read_index, thumbnail_dir_for, write_index
from tests.support.index_archives import deploy_archive
from tests.support.live_server import ROOT, free_port
from tests.test_hostile_download import GUNICORN, STARTUP_FAILED

LIMITS = DownloadLimits(download_mb=100, unpacked_mb=10, seconds=60)


def _header(name: str, kind: bytes, size: int) -> bytes:
    member = tarfile.TarInfo(name)
    member.type, member.size = kind, size
    return member.tobuf(tarfile.USTAR_FORMAT)


def _gzip_stream(target: Path, parts) -> Path:
    """A .tar.gz of the byte strings `parts` yields, compressed as they come: never all in memory."""
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as packed:
        for part in parts:
            packed.write(part)
    return target


def _long_name_bomb(target: Path, size: int, kind: bytes = tarfile.GNUTYPE_LONGNAME):
    """One GNU long-name (or long-link) header announcing `size` bytes of name, then the name, then a member."""
    def parts():
        yield _header("././@LongLink", kind, size)
        chunk = b"a" * 2**20
        for start in range(0, size, len(chunk)):
            yield chunk[: size - start]
        yield bytes(-size % 512)
        yield _header("index.pkl", tarfile.REGTYPE, 0) + bytes(1024)

    return _gzip_stream(target, parts())


def _pax_archive(target: Path, pax_headers: dict[str, str]) -> Path:
    with tarfile.open(target, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        member = tarfile.TarInfo("index.pkl")
        member.pax_headers = pax_headers
        tar.addfile(member, io.BytesIO(b""))
    return target


def test_a_255_kb_archive_with_a_huge_long_name_is_refused_before_its_name_is_read(file_server, tmp_path):
    served, base_url = file_server
    archive = _long_name_bomb(served / "long-name.tar.gz", 250 * 2**20)
    assert archive.stat().st_size < 256 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(IndexDownloadError, match=r"refusing a GNU long-name header of 262,144,000 bytes at byte 0"):
            fetch_index(f"{base_url}/long-name.tar.gz", tmp_path / "data" / "index.pkl", LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the header's 250 MiB were never gathered
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("kind, named", [(tarfile.GNUTYPE_LONGLINK, "GNU long-link"), (tarfile.XGLTYPE, "pax global"),
                                         (tarfile.XHDTYPE, "pax")])
def test_other_special_headers_over_the_limit_are_refused(file_server, tmp_path, kind, named):
    served, base_url = file_server
    _long_name_bomb(served / f"special-{ord(kind)}.tar.gz", SPECIAL_HEADER_LIMIT + 1, kind)
    with pytest.raises(IndexDownloadError, match=f"refusing a {named} header of 8,193 bytes"):
        fetch_index(f"{base_url}/special-{ord(kind)}.tar.gz", tmp_path / "index.pkl", LIMITS)


@pytest.mark.parametrize("pax_headers, message", [
    ({"comment": "1" * 65536}, "pax header of 65,551 bytes"),  # 9.5 s of parsing on Python 3.11.7
    ({"comment": "1" * 5000}, "run of over 64 digits"),  # under the size limit, still quadratic
    ({"size": "0"}, "that sets 'size'"),
    ({"GNU.sparse.map": "0,0"}, "that sets 'GNU.sparse.map'"),
])
def test_long_or_slow_pax_headers_are_refused(file_server, tmp_path, pax_headers, message):
    served, base_url = file_server
    _pax_archive(served / "pax.tar.gz", pax_headers)
    with pytest.raises(IndexDownloadError, match=f"cannot be unpacked: refusing .*{message}"):
        fetch_index(f"{base_url}/pax.tar.gz", tmp_path / "index.pkl", LIMITS)


def test_a_malformed_pax_record_is_refused(file_server, tmp_path):
    served, base_url = file_server
    records = b"99 path=index.pkl\n"  # says 99 bytes, has 18
    _gzip_stream(served / "malformed.tar.gz", [_header("././@PaxHeader", tarfile.XHDTYPE, len(records)),
                                               records.ljust(512, b"\0"), bytes(1024)])
    with pytest.raises(IndexDownloadError, match="refusing a pax header at byte 0 with a malformed record"):
        fetch_index(f"{base_url}/malformed.tar.gz", tmp_path / "index.pkl", LIMITS)


def _long_named_build(tiny_index: Path, folder: Path) -> Path:
    """The tiny index saved under a 150-character name, with its thumbnail folder named after it: long names."""
    index = read_index(tiny_index)
    long_index = folder / ("photos-of-" + "x" * 136 + ".pkl")
    index = replace(index, thumbnail_dir=thumbnail_dir_for(long_index).name)
    folder.mkdir()
    write_index(index, long_index)
    thumbnail_dir_for(long_index).symlink_to(thumbnail_dir_for(tiny_index))
    return long_index


@pytest.mark.parametrize("how", ["tar-gnu", "tar-posix", "tarfile-gnu", "tarfile-pax"])
def test_archives_with_real_long_names_still_load(tiny_index, file_server, tmp_path, how):
    """GNU tar's and tarfile's own long-name headers, GNU and pax (GNU tar's posix adds a pax header per member)."""
    served, base_url = file_server
    build = _long_named_build(tiny_index, tmp_path / "build")
    archive = served / f"long-{how}.tar.gz"
    if how.startswith("tar-"):
        subprocess.run(["tar", f"--format={how[4:]}", "-C", build.parent, "-h", "-czf", archive, build.name,
                        thumbnail_dir_for(build).name], check=True)
    else:
        form = tarfile.GNU_FORMAT if how == "tarfile-gnu" else tarfile.PAX_FORMAT
        with tarfile.open(archive, "w:gz", format=form) as tar:
            tar.add(build, arcname=build.name)
            tar.add(thumbnail_dir_for(tiny_index), arcname=thumbnail_dir_for(build).name)
    target = tmp_path / "data" / build.name
    fetch_index(f"{base_url}/{archive.name}", target, LIMITS)
    assert read_index(target).photos == read_index(tiny_index).photos
    assert sorted(p.name for p in thumbnail_dir_for(target).iterdir()) == sorted(
        p.name for p in thumbnail_dir_for(tiny_index).iterdir())


def test_publish_s_archive_and_the_plain_deploy_archive_still_load(tiny_index, file_server, tmp_path):
    served, base_url = file_server
    written = write_index_archive(tiny_index, served)  # PAX_FORMAT, as publish --index-archive writes it
    deploy_archive(tiny_index, served / "plain.tar.gz", {"index-thumbnails/" + "é" * 120 + ".jpg": b"x"})
    fetch_index(f"{base_url}/{written.path.name}", tmp_path / "a" / "index.pkl", LIMITS, with_thumbnails=False)
    fetch_index(f"{base_url}/plain.tar.gz", tmp_path / "b" / "index.pkl", LIMITS)
    assert read_index(tmp_path / "a" / "index.pkl").photos == read_index(tmp_path / "b" / "index.pkl").photos
    # Its long name was read within the header caps; the thumbnail folder then keeps only thumbnail names.
    assert sorted(os.listdir(tmp_path / "b" / "index-thumbnails")) == sorted(os.listdir(thumbnail_dir_for(tiny_index)))


def test_gunicorn_refuses_the_long_name_bomb_in_one_line(file_server, tmp_path):
    """The issue's boot: LOOKALIKE_INDEX_MAX_UNPACKED_MB=10, a 255 kB archive; exit status 4, one line, no traceback."""
    served, base_url = file_server
    _long_name_bomb(served / "boot-bomb.tar.gz", 250 * 2**20)
    command = [str(GUNICORN), "--bind", f"127.0.0.1:{free_port()}", "--workers", "1", "app:create_app()"]
    env = {**os.environ, "LOOKALIKE_INDEX": str(tmp_path / "index.pkl"), "LOOKALIKE_INDEX_MAX_UNPACKED_MB": "10",
           "LOOKALIKE_INDEX_URL": f"{base_url}/boot-bomb.tar.gz"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == STARTUP_FAILED
    assert result.stderr.count("lookalike: cannot start: ") == 1 and "GNU long-name header of 262,144,000" in result.stderr
    assert "Traceback" not in result.stderr
