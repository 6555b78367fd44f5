"""Hostile LOOKALIKE_INDEX_URL archives: nothing but the index and its own thumbnail folder is ever replaced.

The archives are served from 127.0.0.1; URLs naming other hosts are refused
before any connection is made, so no test sends traffic off this machine.
"""

from __future__ import annotations

from dataclasses import replace

import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from app import create_app
from app.index_download import DownloadLimits, IndexDownloadError, fetch_index
from app.settings import SettingError, read_settings
from core.index_file import Index, read_index, thumbnail_dir_for, write_index
from tests.support.index_archives import QuietHandler, deploy_archive, serving
from tests.support.index_samples import index_file_bytes, valid_index, with_path
from tests.support.live_server import ROOT, free_port

GUNICORN = Path(sys.executable).with_name("gunicorn")
STARTUP_FAILED = 4


def _tar(target: Path, members: dict[str, bytes], folders: dict[str, Path] | None = None) -> Path:
    """A .tar.gz of `members` (name: content) and `folders` (name in the archive: folder on disk)."""
    with tarfile.open(target, "w:gz") as tar:
        for name, folder in (folders or {}).items():
            tar.add(folder, arcname=name)
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return target


def _hostile_archive(tiny_index: Path, target: Path, thumbnail_dir: str) -> Path:
    """The tiny index, saying its thumbnails are in `thumbnail_dir`, with a folder of that name in the archive."""
    index = read_index(tiny_index)
    index = replace(index, thumbnail_dir=thumbnail_dir)
    members = {"index.pkl": index_file_bytes(index), f"{thumbnail_dir}/base.html": b"{{ cycler.__init__ }}"}
    return _tar(target, members)


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A data folder with originals and templates beside where the index goes; returns the index path."""
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "mine.jpg").write_bytes(b"my only copy")
    (data / "templates").mkdir()
    (data / "templates" / "base.html").write_bytes(b"the real template")
    return data / "index.pkl"


def _untouched(index_path: Path) -> bool:
    data = index_path.parent
    return (data / "photos" / "mine.jpg").read_bytes() == b"my only copy" and (
        data / "templates" / "base.html"
    ).read_bytes() == b"the real template"


@pytest.mark.parametrize("folder", ["photos", "templates", "index-thumbnails/../photos", "."])
def test_the_archive_cannot_choose_the_folder_it_replaces(tiny_index, file_server, deployed, folder):
    served, base_url = file_server
    name = f"names-{folder.replace('/', '_')}.tar.gz"
    _hostile_archive(tiny_index, served / name, folder)
    with pytest.raises(IndexDownloadError):
        fetch_index(f"{base_url}/{name}", deployed)
    assert _untouched(deployed)
    assert not deployed.exists()


def test_other_members_are_never_unpacked(tiny_index, file_server, deployed):
    """A valid archive that also carries a photos/ and a templates/ folder: only the index and its thumbnails land."""
    served, base_url = file_server
    extra = {"photos/mine.jpg": b"overwritten", "templates/base.html": b"{{ evil }}", "index-thumbnails/sub/x.jpg": b"x"}
    deploy_archive(tiny_index, served / "extra.tar.gz", extra)
    fetch_index(f"{base_url}/extra.tar.gz", deployed)
    assert _untouched(deployed)
    assert sorted(p.name for p in deployed.parent.iterdir()) == ["index-thumbnails", "index.pkl", "photos", "templates"]
    assert not (deployed.parent / "index-thumbnails" / "sub").exists()
    assert read_index(deployed).photos == read_index(tiny_index).photos


def test_the_thumbnail_folder_is_named_after_the_index(tiny_index, file_server, tmp_path):
    """LOOKALIKE_INDEX=shop.pkl takes shop.pkl and shop-thumbnails/ from the archive, as precompute names them."""
    index = read_index(tiny_index)
    build = tmp_path / "build"
    build.mkdir()
    index = replace(index, thumbnail_dir="shop-thumbnails")
    write_index(index, build / "shop.pkl")
    (build / "shop-thumbnails").symlink_to(thumbnail_dir_for(tiny_index))
    served, base_url = file_server
    with tarfile.open(served / "shop.tar.gz", "w:gz") as tar:
        tar.add(build / "shop.pkl", arcname="./shop.pkl")
        tar.add(thumbnail_dir_for(tiny_index), arcname="./shop-thumbnails")
    target = tmp_path / "data" / "shop.pkl"
    fetch_index(f"{base_url}/shop.tar.gz", target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["shop-thumbnails", "shop.pkl"]
    assert create_app(target).test_client().get("/photos/0/thumb.jpg").status_code == 200


def _limits(**changes) -> DownloadLimits:
    return DownloadLimits(**{"download_mb": 100, "unpacked_mb": 100, "seconds": 60, **changes})


def test_the_download_cap(tiny_index, file_server, deployed):
    served, base_url = file_server
    archive = deploy_archive(tiny_index, served / "capped.tar.gz")
    cap_mb = archive.stat().st_size / 2 / 2**20
    with pytest.raises(IndexDownloadError, match="is over LOOKALIKE_INDEX_MAX_MB=.* nothing was unpacked"):
        fetch_index(f"{base_url}/capped.tar.gz", deployed, _limits(download_mb=cap_mb))
    assert sorted(p.name for p in deployed.parent.iterdir()) == ["photos", "templates"]


def test_the_unpacked_cap_stops_a_small_archive_of_a_huge_file(file_server, deployed):
    """64 MiB of zeros gzip to about 64 kB; the cap of 8 MB stops it before it is written."""
    served, base_url = file_server
    _tar(served / "bomb.tar.gz", {"index.pkl": bytes(64 * 2**20)})
    assert (served / "bomb.tar.gz").stat().st_size < 2**20
    with pytest.raises(IndexDownloadError, match="unpacks to over LOOKALIKE_INDEX_MAX_UNPACKED_MB=8 MB"):
        fetch_index(f"{base_url}/bomb.tar.gz", deployed, _limits(unpacked_mb=8))
    assert sorted(p.name for p in deployed.parent.iterdir()) == ["photos", "templates"]


class _SlowHandler(QuietHandler):
    """Sends a gzip header, then one byte every tenth of a second for ten seconds."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"\x1f")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass


@pytest.mark.slow
def test_the_time_cap(deployed, tmp_path):
    with serving(tmp_path, _SlowHandler) as base_url:
        with pytest.raises(IndexDownloadError, match="took over LOOKALIKE_INDEX_TIMEOUT_S=1 s"):
            fetch_index(f"{base_url}/slow.tar.gz", deployed, _limits(seconds=1))
    assert sorted(p.name for p in deployed.parent.iterdir()) == ["photos", "templates"]


def test_the_sha256_is_checked_before_unpacking(tiny_index, file_server, deployed, monkeypatch, capsys):
    served, base_url = file_server
    archive = deploy_archive(tiny_index, served / "signed.tar.gz")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/signed.tar.gz")
    monkeypatch.setenv("LOOKALIKE_INDEX_SHA256", "0" * 64)
    with pytest.raises(SystemExit) as exit_info:
        create_app(deployed)
    assert exit_info.value.code == STARTUP_FAILED
    err = capsys.readouterr().err
    assert f"has SHA-256 {digest}, not the {'0' * 64} LOOKALIKE_INDEX_SHA256 expects; nothing was unpacked" in err
    assert sorted(p.name for p in deployed.parent.iterdir()) == ["photos", "templates"]

    monkeypatch.setenv("LOOKALIKE_INDEX_SHA256", digest.upper())
    assert create_app(deployed).test_client().get("/healthz").json["photos"] == 5

    monkeypatch.setenv("LOOKALIKE_INDEX_SHA256", "not-a-digest")
    with pytest.raises(SystemExit):
        create_app(deployed)
    assert "LOOKALIKE_INDEX_SHA256 must be 64 hexadecimal digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    ["http://example.com/lookalike-data.tar.gz", "http://10.0.0.1/x.tar.gz", "ftp://example.com/x.tar.gz",
     "file:///etc/passwd", "lookalike-data.tar.gz"],
)
def test_only_https_or_this_machine(url, deployed):
    """Refused before any connection is made: these never leave the machine."""
    with pytest.raises(IndexDownloadError, match="must be an https:// or s3:// URL"):
        fetch_index(url, deployed)


class _DowngradeHandler(QuietHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://example.com/lookalike-data.tar.gz")
        self.end_headers()


def test_a_redirect_cannot_leave_for_plain_http(deployed, tmp_path):
    with serving(tmp_path, _DowngradeHandler) as base_url:
        with pytest.raises(IndexDownloadError, match="http://example.com/lookalike-data.tar.gz: LOOKALIKE_INDEX_URL must"):
            fetch_index(f"{base_url}/x.tar.gz", deployed)


@pytest.mark.parametrize("name", ["LOOKALIKE_INDEX_MAX_MB", "LOOKALIKE_INDEX_MAX_UNPACKED_MB", "LOOKALIKE_INDEX_TIMEOUT_S"])
@pytest.mark.parametrize("value", ["0", "-1", "lots", "inf"])
def test_caps_must_be_positive_numbers(name, value):
    with pytest.raises(SettingError, match=f"{name} must be a positive number"):
        read_settings({"LOOKALIKE_INDEX_URL": "https://example.com/lookalike-data.tar.gz", name: value})


# The photo folder a downloaded index names: inside its own folder, or not used.


def _archive_of(index: dict, thumbnails: Path, target: Path) -> Path:
    return _tar(target, {"index.pkl": index_file_bytes(index)}, {"index-thumbnails": thumbnails})


def _passwd_index(photo_root: str) -> Index:
    return replace(with_path(valid_index(), 0, "etc/passwd"), photo_root=photo_root, thumbnail_dir="index-thumbnails")


@pytest.mark.parametrize("photo_root", ["/", "/etc/..", "/etc", "/proc/self", "/usr/share"])
def test_a_system_photo_root_stops_the_app(photo_root, tmp_path, capsys):
    """The hostile tester's index with photo_root "/" served /etc/passwd as an original."""
    path = tmp_path / "index.pkl"
    write_index(_passwd_index(photo_root), path)
    with pytest.raises(SystemExit) as exit_info:
        create_app(path)
    assert exit_info.value.code == STARTUP_FAILED
    assert f"photo_root {photo_root!r} is a system folder" in capsys.readouterr().err


def test_a_system_folder_in_the_environment_is_refused_too(tiny_index, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_PHOTO_ROOT", "/etc")
    with pytest.raises(SystemExit):
        create_app(tiny_index)
    assert "LOOKALIKE_PHOTO_ROOT '/etc' is a system folder" in capsys.readouterr().err


def test_a_downloaded_index_keeps_its_photos_inside_its_folder(tiny_index, file_server, tmp_path, monkeypatch, capsys):
    """Built from ~/Pictures, shipped by URL: the recorded folder is not used unless LOOKALIKE_PHOTO_ROOT says so."""
    served, base_url = file_server
    index = read_index(tiny_index)
    photo = index.photos[0]
    outside = _archive_of(index, thumbnail_dir_for(tiny_index), served / "outside.tar.gz")
    target = tmp_path / "data" / "index.pkl"
    monkeypatch.setenv("LOOKALIKE_ORIGINALS", "as-is")  # byte for byte, so the copy below can be recognised
    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/{outside.name}")
    client = create_app(target).test_client()
    assert "lookalike: originals are not served from disk: the downloaded index names photo_root" in capsys.readouterr().err
    assert client.get(f"/photos/{photo['id']}/original").status_code == 404
    assert "not on this server" in client.get(f"/photos/{photo['id']}").get_data(as_text=True)

    monkeypatch.setenv("LOOKALIKE_PHOTO_ROOT", index.photo_root)  # the operator says where they are
    client = create_app(target).test_client()
    assert client.get(f"/photos/{photo['id']}/original").status_code == 200

    monkeypatch.delenv("LOOKALIKE_PHOTO_ROOT")
    inside = _archive_of(replace(index, photo_root="originals"), thumbnail_dir_for(tiny_index), served / "inside.tar.gz")
    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/{inside.name}")
    (target.parent / "originals").mkdir()
    (target.parent / "originals" / photo["path"]).write_bytes(b"shipped beside the index")
    client = create_app(target).test_client()
    assert client.get(f"/photos/{photo['id']}/original").data == b"shipped beside the index"


def test_a_locally_built_index_may_keep_its_photos_anywhere_but_system_folders(tiny_index, tmp_path):
    """`python -m precompute ~/Pictures --out data/index.pkl`: the photos are outside data/, and that is fine."""
    index = read_index(tiny_index)
    local = tmp_path / "data" / "index.pkl"
    local.parent.mkdir()
    write_index(index, local)
    thumbnail_dir_for(local).symlink_to(thumbnail_dir_for(tiny_index))
    assert not Path(index.photo_root).is_relative_to(local.parent)
    client = create_app(local).test_client()
    assert client.get(f"/photos/{index.photos[0]['id']}/original").status_code == 200


def test_gunicorn_refuses_an_archive_aimed_at_the_templates(tiny_index, file_server, deployed):
    """The whole boot as Heroku runs it: one line, exit status 4, the templates beside the index untouched."""
    served, base_url = file_server
    _hostile_archive(tiny_index, served / "templates.tar.gz", "templates")
    command = [str(GUNICORN), "--bind", f"127.0.0.1:{free_port()}", "--workers", "1", "app:create_app()"]
    env = {**os.environ, "LOOKALIKE_INDEX": str(deployed), "LOOKALIKE_INDEX_URL": f"{base_url}/templates.tar.gz"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == STARTUP_FAILED
    assert result.stderr.count("lookalike: cannot start: ") == 1 and "keeps its thumbnails in 'templates'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _untouched(deployed)
