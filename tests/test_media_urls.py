"""LOOKALIKE_MEDIA_URL: thumbnails and previews from a bucket, public or presigned, against a real local S3 (moto).

The app runs with the index alone (no thumbnail folder beside it), as on a
dyno whose media was published to object storage.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app import create_app
from core.index_file import read_index
from tests.support.media_bucket import fetch, image_sources, index_alone, make_public, put_thumbnails
from tests.support.s3_server import running_s3

BUCKET = "lookalike-media"
PREFIX = "gallery/"
PASSWORD = "a media test's password"
SECRET = "media-test-secret-0123456789"


@pytest.fixture
def s3(monkeypatch, tmp_path: Path):
    """moto on 127.0.0.1 with the tiny index's thumbnails in a private bucket; no AWS files of this machine read."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with running_s3(monkeypatch) as endpoint:
        endpoint.create_bucket(BUCKET)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint.url)
        yield endpoint


@pytest.fixture
def media_files(s3, tiny_index: Path) -> dict[str, bytes]:
    return put_thumbnails(s3.client(), BUCKET, PREFIX, tiny_index)


@pytest.fixture
def lone_index(tiny_index: Path, tmp_path: Path) -> Path:
    return index_alone(tiny_index, tmp_path / "dyno")


def _app(monkeypatch, index: Path, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app(index)


def _img_src_policy(response) -> str:
    return next(part.strip() for part in response.headers["Content-Security-Policy"].split(";") if "img-src" in part)


def test_public_media_every_image_loads_from_the_bucket_and_the_csp_allows_exactly_it(
    s3, media_files, lone_index, monkeypatch
):
    make_public(s3.client(), BUCKET)
    base = f"{s3.url}/{BUCKET}/{PREFIX}"
    client = _app(monkeypatch, lone_index, LOOKALIKE_MEDIA_URL=base).test_client()
    gallery, photo = client.get("/"), client.get("/photos/2")
    sources = image_sources(gallery.get_data(as_text=True)) + image_sources(photo.get_data(as_text=True))
    assert len(sources) == 5 + 1 + 3  # the gallery's thumbnails, the preview, the similar photos
    for source in sources:
        assert source.startswith(base)
        assert fetch(source) == (200, media_files[source.removeprefix(base)])
    assert _img_src_policy(gallery) == f"img-src 'self' {s3.url}" == _img_src_policy(photo)

    similar = client.get("/api/photos/2/similar").get_json()["similar"]
    assert [item["thumbnail"] for item in similar] == image_sources(photo.get_data(as_text=True))[1:]
    redirect = client.get("/photos/2/preview.jpg")  # links made before the media moved still work
    assert redirect.status_code == 302 and redirect.headers["Location"] == image_sources(photo.get_data(as_text=True))[0]


def test_without_media_url_the_csp_allows_this_site_alone(tiny_index, monkeypatch):
    monkeypatch.delenv("LOOKALIKE_MEDIA_URL", raising=False)
    response = create_app(tiny_index).test_client().get("/")
    assert _img_src_policy(response) == "img-src 'self'"
    assert all(source.startswith("/photos/") for source in image_sources(response.get_data(as_text=True)))


def test_a_private_gallery_refuses_public_media_unless_the_operator_says_so(tiny_index, monkeypatch, capsys):
    private = {"LOOKALIKE_PASSWORD": PASSWORD, "SECRET_KEY": SECRET, "LOOKALIKE_MEDIA_URL": "https://cdn.example.com/media/"}
    with pytest.raises(SystemExit) as stopped:
        _app(monkeypatch, tiny_index, **private)
    assert stopped.value.code == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lookalike: cannot start: the gallery is private")
    assert "s3://BUCKET/PREFIX/" in lines[0] and "LOOKALIKE_MEDIA_PUBLIC=yes" in lines[0]

    app = _app(monkeypatch, tiny_index, LOOKALIKE_MEDIA_PUBLIC="yes")
    assert "thumbnails and previews are public at https://cdn.example.com/media/" in capsys.readouterr().err
    assert _img_src_policy(app.test_client().get("/login")) == "img-src 'self' https://cdn.example.com"


def test_a_private_gallery_refuses_public_originals_too(tiny_index, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _app(monkeypatch, tiny_index, LOOKALIKE_PASSWORD=PASSWORD, SECRET_KEY=SECRET,
             LOOKALIKE_ORIGINALS_URL="https://cdn.example.com/media/originals/")
    assert "LOOKALIKE_ORIGINALS_URL https://cdn.example.com/media/originals/ is public" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOOKALIKE_MEDIA_URL": "ftp://media.example.com/"}, "must be https://"),
        ({"LOOKALIKE_MEDIA_URL": "http://media.example.com/gallery/"}, "plain http:// only from this machine"),
        ({"LOOKALIKE_MEDIA_URL": "https://cdn.example.com/media/?v=1"}, "must not have a query"),
        ({"LOOKALIKE_MEDIA_URL": "s3://x/gallery/"}, "names no valid bucket"),
        ({"LOOKALIKE_MEDIA_URL": "s3://lookalike-media/../gallery/"}, "no '.' or '..' names"),  # publish's rule
        ({"LOOKALIKE_MEDIA_URL": "s3://lookalike-media/", "LOOKALIKE_MEDIA_URL_LIFETIME_S": "0"}, "whole seconds from 4"),
        ({"LOOKALIKE_MEDIA_URL": "s3://lookalike-media/", "LOOKALIKE_MEDIA_URL_LIFETIME_S": "604801"}, "a week"),
        ({"LOOKALIKE_MEDIA_URL": "s3://lookalike-media/", "LOOKALIKE_MEDIA_URL_LIFETIME_S": "1h"}, "whole seconds"),
        ({"LOOKALIKE_ORIGINALS_URL": "http://photos.example.com/"}, "LOOKALIKE_ORIGINALS_URL must be https://"),
    ],
)
def test_unusable_media_settings_stop_the_app_with_one_line(tiny_index, monkeypatch, capsys, env, message):
    with pytest.raises(SystemExit) as stopped:
        _app(monkeypatch, tiny_index, **env)
    assert stopped.value.code == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lookalike: cannot start: ") and message in err


def test_presigned_media_without_credentials_stops_with_one_line(tiny_index, monkeypatch, capsys, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(SystemExit):
        _app(monkeypatch, tiny_index, LOOKALIKE_MEDIA_URL="s3://lookalike-media/gallery/")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "AWS_ACCESS_KEY_ID" in err


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_a_private_gallery_with_presigned_media_serves_images_from_a_private_bucket(
    s3, media_files, lone_index, monkeypatch
):
    app = _app(monkeypatch, lone_index, LOOKALIKE_PASSWORD=PASSWORD, SECRET_KEY=SECRET,
               LOOKALIKE_MEDIA_URL=f"s3://{BUCKET}/{PREFIX}", LOOKALIKE_MEDIA_URL_LIFETIME_S="900",
               LOOKALIKE_ORIGINALS_URL=f"s3://{BUCKET}/{PREFIX}originals/", LOOKALIKE_ORIGINALS="as-is")
    client = app.test_client()
    assert client.get("/photos/2").status_code == 302  # to the sign-in page: nothing of the gallery shown
    auth = {"Authorization": "Basic " + base64.b64encode(f"lookalike:{PASSWORD}".encode()).decode()}
    page = client.get("/photos/2", headers=auth)
    sources = image_sources(page.get_data(as_text=True))
    assert len(sources) == 1 + 3
    object_base = f"{s3.url}/{BUCKET}/{PREFIX}"
    for source in sources:
        name = urlsplit(source).path.removeprefix(f"/{BUCKET}/{PREFIX}")
        assert source.startswith(object_base + name + "?") and _query(source)["X-Amz-Expires"] == "900"
        assert fetch(source) == (200, media_files[name])
        assert fetch(object_base + name)[0] == 403  # the bucket itself is private
    assert _img_src_policy(page) == f"img-src 'self' {s3.url}"
    similar = client.get("/api/photos/2/similar", headers=auth).get_json()["similar"]
    assert [item["thumbnail"] for item in similar] == sources[1:]

    photo = next(p for p in read_index(lone_index).photos if p["id"] == 2)
    original = (Path(read_index(lone_index).photo_root) / photo["path"]).read_bytes()
    s3.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}originals/{photo['path']}", Body=original)
    assert client.get("/photos/2/original").status_code == 302  # to the sign-in page
    redirect = client.get("/photos/2/original", headers=auth)
    assert redirect.status_code == 302 and "X-Amz-Signature=" in redirect.headers["Location"]
    assert fetch(redirect.headers["Location"]) == (200, original)


def test_presigned_urls_stay_the_same_within_a_window_and_change_with_it(s3, media_files, lone_index, monkeypatch):
    app = _app(monkeypatch, lone_index, LOOKALIKE_MEDIA_URL=f"s3://{BUCKET}/{PREFIX}", LOOKALIKE_MEDIA_URL_LIFETIME_S="3600")
    media = app.extensions["lookalike.media"]
    assert media.window_s == 900
    now = [1_800_000_000.0 + 100]  # 100 s into a window
    monkeypatch.setattr(media, "_clock", lambda: now[0])
    client = app.test_client()

    def rendered() -> tuple[list[str], list[str]]:
        return image_sources(client.get("/").get_data(as_text=True)), image_sources(client.get("/photos/2").get_data(as_text=True))

    first = rendered()
    now[0] += 700  # still the same window: the same URLs, from the kept pages or rendered again
    assert rendered() == first
    app.extensions["lookalike.pages"] = type(app.extensions["lookalike.pages"])()  # rendered afresh, not kept
    assert rendered() == first
    signed_at = datetime.fromtimestamp(1_800_000_000, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    assert {_query(url)["X-Amz-Date"] for url in first[0] + first[1]} == {signed_at}

    now[0] += 200  # the next window: kept pages and cards are made again, with URLs signed as of its start
    second = rendered()
    assert len(second[0]) == len(first[0]) and not set(second[0] + second[1]) & set(first[0] + first[1])
    assert {_query(url)["X-Amz-Date"] for url in second[0] + second[1]} == {
        datetime.fromtimestamp(1_800_000_900, timezone.utc).strftime("%Y%m%dT%H%M%SZ")}
    assert [urlsplit(url).path for url in second[0]] == [urlsplit(url).path for url in first[0]]


def test_the_app_needs_no_thumbnail_folder_with_media_elsewhere(lone_index, monkeypatch):
    assert not (lone_index.parent / read_index(lone_index).thumbnail_dir).exists()
    client = _app(monkeypatch, lone_index, LOOKALIKE_MEDIA_URL="https://cdn.example.com/lookalike/").test_client()
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'src="https://cdn\.example\.com/lookalike/[0-9a-f]{20}-thumb\.jpg"', page)
    assert client.get("/photos/0/thumb.jpg").status_code == 302
