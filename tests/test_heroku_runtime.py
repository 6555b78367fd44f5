"""Heroku installs requirements.txt and runs the Procfile: prove the app serves on exactly that.

The runtime test builds a fresh virtual environment from requirements.txt
alone, so an import the web app needs but requirements.txt lacks (torch,
tqdm, ...) fails here rather than on Heroku. The index reaches the server
the way it reaches a dyno: LOOKALIKE_INDEX_URL, here a local HTTP server; with
LOOKALIKE_MEDIA_URL the thumbnails come from a bucket (moto, on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app import create_app
from app.index_download import IndexDownloadError, fetch_index
from core.index_file import read_index
from tests.support.index_archives import deploy_archive
from tests.support.live_server import ROOT, free_port, running_server
from tests.support.media_bucket import image_sources, publish
from tests.support.runtime_venv import fresh_runtime_venv, installed_mb
from tests.support.s3_server import running_s3

pytestmark = pytest.mark.slow

SLUG_LIMIT_MB = 500  # Heroku's limit on the compressed slug; the installed venv is a generous upper bound


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with requirements.txt and nothing else, as Heroku builds it."""
    return fresh_runtime_venv(tmp_path_factory.mktemp("heroku") / "venv")


def _procfile_web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web process")


def _runtime_env(runtime_venv: Path, port: int, index: Path, index_url: str) -> dict[str, str]:
    """What Heroku sets, and what docs/heroku.md has the operator set, for the Procfile's command."""
    return {
        "PATH": f"{runtime_venv / 'bin'}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(runtime_venv),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "LOOKALIKE_INDEX": str(index),
        "LOOKALIKE_INDEX_URL": index_url,
    }


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_requirements_txt_alone_serves_the_app_through_the_procfile(
    runtime_venv: Path, tiny_index: Path, file_server, tmp_path: Path
):
    size_mb = installed_mb(runtime_venv)
    print(f"\nfresh venv from requirements.txt: {size_mb:.0f} MB installed")
    assert size_mb < SLUG_LIMIT_MB / 2

    folder, base_url = file_server
    deploy_archive(tiny_index, folder / "lookalike-data.tar.gz")
    port = free_port()
    env = _runtime_env(runtime_venv, port, tmp_path / "data" / "index.pkl", f"{base_url}/lookalike-data.tar.gz")
    command = ["bash", "-c", "exec " + _procfile_web_command()]
    with running_server(command, port, tmp_path / "gunicorn.log", env) as (base, server):
        status, _, body = _get(f"{base}/")
        assert status == 200 and "5 photos" in body.decode()
        status, _, body = _get(f"{base}/photos/2")
        assert status == 200 and "café.jpg" in body.decode()
        status, content_type, _ = _get(f"{base}/photos/2/preview.jpg")
        assert status == 200 and content_type == "image/jpeg"
        status, _, body = _get(f"{base}/search")
        assert status == 200 and "Search by photo is off" in body.decode() and "torch" in body.decode()
        status, _, _ = _get(f"{base}/api/search", b"", {"Content-Type": "multipart/form-data; boundary=x"})
        assert status == 503
        status, _, body = _get(f"{base}/api/similar?like=2&unlike=4&k=2")  # "more like these" needs no torch
        assert status == 200 and len(json.loads(body)["similar"]) == 2
        status, _, body = _get(f"{base}/similar?like=2,3")
        assert status == 200 and "Most similar" in body.decode()
        workers = _children(server.pid)
        assert len(workers) == 2, "WEB_CONCURRENCY=2 should give two workers"
        assert all(str(runtime_venv) in Path(f"/proc/{pid}/cmdline").read_text() for pid in [server.pid, *workers])
    # The Procfile binds every interface and no password is set: the log says so, once.
    assert (tmp_path / "gunicorn.log").read_text().count("this gallery is public") == 1


def test_with_media_in_a_bucket_the_dyno_serves_the_index_alone(runtime_venv: Path, tiny_index: Path, tmp_path: Path,
                                                                 monkeypatch):
    """The 100k-photo route, end to end: publish puts the media and the index archive in a private bucket; the dyno
    fetches the index alone by LOOKALIKE_INDEX_URL=s3://… and its pages show presigned media URLs."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with running_s3(monkeypatch) as s3:  # sets the AWS credentials in this environment, which gunicorn inherits
        s3.create_bucket("dyno-media")
        settings = publish(tiny_index, s3, "s3://dyno-media/lookalike", "--index-archive")
        files = {path.name: path.read_bytes() for path in (tiny_index.parent / "index-thumbnails").iterdir()}
        port = free_port()
        env = {
            **_runtime_env(runtime_venv, port, tmp_path / "data" / "index.pkl", settings["LOOKALIKE_INDEX_URL"]),
            "LOOKALIKE_INDEX_SHA256": settings["LOOKALIKE_INDEX_SHA256"],
            "LOOKALIKE_MEDIA_URL": "s3://dyno-media/lookalike/",
            "AWS_ENDPOINT_URL_S3": s3.url,
        }
        command = ["bash", "-c", "exec " + _procfile_web_command()]
        with running_server(command, port, tmp_path / "gunicorn.log", env) as (base, _):
            sources = []
            for path in ("/", "/photos/2"):
                with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
                    assert f"img-src 'self' {s3.url};" in response.headers["Content-Security-Policy"]
                    sources += image_sources(response.read().decode())
            assert len(sources) == 5 + 1 + 3
            for source in sources:
                assert source.startswith(f"{s3.url}/dyno-media/lookalike/") and "X-Amz-Signature=" in source
                status, _, body = _get(source)
                assert status == 200 and body == files[source.split("?")[0].rpartition("/")[2]]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["index.pkl"]  # no thumbnail folder on the dyno


def test_with_media_elsewhere_fetch_index_takes_the_index_and_leaves_the_thumbnails(
    tiny_index: Path, file_server, tmp_path: Path
):
    folder, base_url = file_server
    deploy_archive(tiny_index, folder / "full.tar.gz")
    target = tmp_path / "data" / "index.pkl"
    fetch_index(f"{base_url}/full.tar.gz", target, with_thumbnails=False)
    assert read_index(target).photos == read_index(tiny_index).photos
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.pkl"]


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        ("missing.tar.gz", "cannot download the index"),
        ("not-a-tar.tar.gz", "cannot be unpacked"),
        ("escape.tar.gz", "cannot be unpacked"),
        ("no-index.tar.gz", "does not hold a usable index.pkl"),
    ],
)
def test_a_bad_archive_stops_the_boot_and_keeps_the_old_index(
    tiny_index: Path, file_server, tmp_path: Path, archive: str, message: str, monkeypatch, capsys
):
    folder, base_url = file_server
    (folder / "not-a-tar.tar.gz").write_bytes(b"this is not an archive")
    deploy_archive(tiny_index, folder / "escape.tar.gz", extra={"../../escaped.txt": b"out of bounds"})
    with tarfile.open(folder / "no-index.tar.gz", "w:gz") as tar:
        tar.add(tiny_index.parent / "index-thumbnails", arcname="index-thumbnails")
    target = tmp_path / "data" / "index.pkl"
    target.parent.mkdir()
    target.write_bytes(b"the previous index")

    with pytest.raises(IndexDownloadError, match=message):
        fetch_index(f"{base_url}/{archive}", target)
    assert target.read_bytes() == b"the previous index"
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.pkl"]
    assert not (tmp_path / "escaped.txt").exists() and not (folder.parent / "escaped.txt").exists()

    monkeypatch.setenv("LOOKALIKE_INDEX_URL", f"{base_url}/{archive}")
    with pytest.raises(SystemExit) as exit_info:
        create_app(target)
    assert exit_info.value.code == 4
    assert message in capsys.readouterr().err
