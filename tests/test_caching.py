"""Thumbnails are cacheable for a year and revalidate to 304 Not Modified."""

from __future__ import annotations

import pytest

from app import create_app
from benchmarks.synthetic_index import write_synthetic_index

A_YEAR = 365 * 24 * 3600


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    index = write_synthetic_index(tmp_path_factory.mktemp("caching") / "index.pkl", 5)
    return create_app(index).test_client()


@pytest.mark.parametrize("kind", ["thumb", "preview"])
def test_thumbnail_is_cacheable_for_a_year(client, kind):
    response = client.get(f"/photos/3/{kind}.jpg")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    assert response.cache_control.max_age == A_YEAR
    assert response.cache_control.immutable


def test_revalidation_by_etag_gets_304(client):
    first = client.get("/photos/1/thumb.jpg")
    again = client.get("/photos/1/thumb.jpg", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    other = client.get("/photos/1/thumb.jpg", headers={"If-None-Match": '"some-other-version"'})
    assert other.status_code == 200 and other.data == first.data


def test_revalidation_by_date_gets_304(client):
    first = client.get("/photos/2/preview.jpg")
    again = client.get("/photos/2/preview.jpg", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert again.status_code == 304 and again.data == b""


def test_ranges_and_length_are_served(client):
    """Files are sent from the handle opened and checked for containment, with their length and range support."""
    whole = client.get("/photos/4/preview.jpg")
    assert whole.content_length == len(whole.data) > 10 and whole.headers["Accept-Ranges"] == "bytes"
    part = client.get("/photos/4/preview.jpg", headers={"Range": "bytes=2-9"})
    assert part.status_code == 206 and part.data == whole.data[2:10]
