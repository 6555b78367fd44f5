"""Originals that must never run as a page on the gallery's origin, and originals that cannot be opened.

The probe's chain: an index fetched by LOOKALIKE_INDEX_URL set `photo_root`
to `.`, its archive's thumbnail folder held `evil.html` (a valid GIF followed
by HTML), and the original was served as `text/html` because of its name.
Each link of the chain is tested alone, and the whole chain once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app import create_app
from app.index_download import DownloadLimits, fetch_index
from core.index_file import read_index, thumbnail_dir_for, write_index
from tests.support.hostile_photos import EVIL_ORIGINALS as EVIL
from tests.support.index_archives import deploy_archive
from tests.support.index_samples import index_with_paths, local_index_of


def _built(tiny_index: Path, index: dict, folder: Path) -> Path:
    """`index` written into `folder` with a copy of the tiny index's thumbnails, ready to be archived."""
    path = folder / "index.pkl"
    folder.mkdir()
    write_index(index, path)
    shutil.copytree(thumbnail_dir_for(tiny_index), thumbnail_dir_for(path))
    return path


def _served(client, row: int):
    response = client.get(f"/photos/{row}/original")
    response.close()
    return response


@pytest.mark.parametrize("mode", ["as-is", "stripped"])
def test_the_probes_archive_serves_no_page(tiny_index, file_server, tmp_path, monkeypatch, capsys, mode):
    """The whole chain: photo_root '.', the polyglots in the archive's thumbnail folder, named as photos."""
    served, base_url = file_server
    index = index_with_paths(tiny_index, ".", {0: "index-thumbnails/evil.html", 1: "index-thumbnails/evil.js"})
    source = _built(tiny_index, index, tmp_path / "source")
    extra = {f"index-thumbnails/{name}": data for name, data in EVIL.items()}
    archive = deploy_archive(source, served / f"probe-{mode}.tar.gz", extra)
    target = tmp_path / "data" / "index.pkl"
    monkeypatch.setenv("LOOKALIKE_ORIGINALS", mode)
    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/{archive.name}")
    client = create_app(target).test_client()
    assert "which is or holds its thumbnail folder" in capsys.readouterr().err
    for row in (0, 1):
        response = _served(client, row)
        assert response.status_code == 404 and "image/" not in response.content_type, response.content_type
    assert not (thumbnail_dir_for(target) / "evil.html").exists()


@pytest.mark.parametrize("mode", ["as-is", "stripped"])
def test_an_originals_type_is_what_its_decoder_found_never_its_name(tiny_index, tmp_path, monkeypatch, mode):
    photo = (Path(read_index(tiny_index).photo_root) / "alpha.jpg").read_bytes()
    files = {**EVIL, "photo.txt": photo}
    monkeypatch.setenv("LOOKALIKE_ORIGINALS", mode)
    client = create_app(local_index_of(tiny_index, tmp_path, files)).test_client()
    for row, kind in enumerate(["image/gif", "image/gif", "image/jpeg"]):
        response = _served(client, row)
        assert response.status_code == 200 and response.mimetype == kind, list(files)[row]
        assert "attachment" not in response.headers.get("Content-Disposition", "")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_what_is_not_an_image_is_a_download(tiny_index, tmp_path, monkeypatch):
    """As it is on disk (`as-is`): a page or a script becomes a download, never shown. (`stripped` withholds it.)"""
    files = {"notes.html": b"<script>document.title = 'script ran'</script>", "run.js": b"document.title = 1;"}
    monkeypatch.setenv("LOOKALIKE_ORIGINALS", "as-is")
    client = create_app(local_index_of(tiny_index, tmp_path, files)).test_client()
    for row, name in enumerate(files):
        response = client.get(f"/photos/{row}/original")
        assert response.status_code == 200 and response.mimetype == "application/octet-stream", name
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.data == files[name]


def test_the_thumbnail_folder_keeps_only_thumbnail_names(tiny_index, file_server, tmp_path):
    served, base_url = file_server
    extra = {f"index-thumbnails/{name}": data for name, data in {**EVIL, "a" * 20 + "-thumb.jpg.html": b"x"}.items()}
    archive = deploy_archive(tiny_index, served / "extra-names.tar.gz", extra)
    target = tmp_path / "data" / "index.pkl"
    fetch_index(f"{base_url}/{archive.name}", target, DownloadLimits())
    expected = {t["file"] for photo in read_index(target).photos for t in photo["thumbnails"].values()}
    assert {path.name for path in thumbnail_dir_for(target).iterdir()} == expected


@pytest.mark.parametrize("photo_root, path", [(".", "index-thumbnails/{thumb}"), ("index-thumbnails", "{thumb}"),
                                              ("index-thumbnails/..", "index-thumbnails/{thumb}")])
def test_a_downloaded_index_may_not_root_its_photos_at_its_thumbnails(tiny_index, file_server, tmp_path, monkeypatch,
                                                                      capsys, photo_root, path):
    served, base_url = file_server
    thumb = read_index(tiny_index).photos[0]["thumbnails"]["thumb"]["file"]
    index = index_with_paths(tiny_index, photo_root, {0: path.format(thumb=thumb)})
    source = _built(tiny_index, index, tmp_path / "source")
    archive = deploy_archive(source, served / f"root-{len(photo_root)}.tar.gz")
    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/{archive.name}")
    client = create_app(tmp_path / "data" / "index.pkl").test_client()
    assert f"the index names photo_root {photo_root!r}, which is or holds its thumbnail folder" in capsys.readouterr().err
    assert _served(client, 0).status_code == 404


def test_no_original_is_served_from_the_thumbnail_folder(tiny_index, tmp_path):
    """A local index may keep its photos above its own folder (`~/Pictures/.lookalike/index.pkl`), not serve thumbnails."""
    index = read_index(tiny_index)
    thumb = index.photos[0]["thumbnails"]["thumb"]["file"]
    local = tmp_path / ".lookalike" / "index.pkl"
    local.parent.mkdir()
    write_index(index_with_paths(tiny_index, str(tmp_path), {0: f".lookalike/index-thumbnails/{thumb}"}), local)
    shutil.copytree(thumbnail_dir_for(tiny_index), thumbnail_dir_for(local))
    client = create_app(local).test_client()
    assert _served(client, 0).status_code == 404
    assert "not on this server" in client.get("/photos/0").get_data(as_text=True)


def test_a_symlink_loop_is_an_unavailable_original_not_a_500(tiny_index, tmp_path):
    local = local_index_of(tiny_index, tmp_path, {"real.jpg": b"placeholder"})
    (tmp_path / "photos" / "real.jpg").unlink()
    write_index(index_with_paths(tiny_index, str(tmp_path / "photos"), {0: "loop.jpg", 1: "a/b.jpg"}), local)
    os.symlink("loop.jpg", tmp_path / "photos" / "loop.jpg")
    os.symlink("a", tmp_path / "photos" / "a")
    client = create_app(local).test_client()
    for row in (0, 1):
        page = client.get(f"/photos/{row}")
        assert page.status_code == 200 and "not on this server" in page.get_data(as_text=True)
        original = client.get(f"/photos/{row}/original")
        assert original.status_code == 404 and "no longer on disk" in original.get_data(as_text=True)
