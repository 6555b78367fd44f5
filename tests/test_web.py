"""The Flask app over a real index of holidays-dev, through Flask's test client."""

import re

import numpy as np
import pytest

from app import create_app
from core.index_file import read_index

LINK = re.compile(r'(?:href|src)="([^"]+)"')


@pytest.fixture(scope="module")
def index(holidays_index):
    return read_index(holidays_index)


@pytest.fixture(scope="module")
def client(holidays_index):
    return create_app(holidays_index).test_client()


def links(html: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in LINK.findall(html) if not url.startswith("#")]


def test_gallery_renders_a_page_of_thumbnails(client, index):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"{len(index.photos)} photos" in html
    assert html.count('loading="lazy"') == 48
    assert "efficientnet-lite0" in html


def test_photo_page_lists_similar_photos_best_first(client, index):
    html = client.get("/photos/0").get_data(as_text=True)
    shown = [float(s) for s in re.findall(r'<span class="score-value">(?:<[^>]+>[^<]*</span>)?([0-9.]+)</span>', html)]
    assert len(shown) == index.neighbours.shape[1] == 10
    assert shown == sorted(shown, reverse=True)
    expected = [f'href="/photos/{index.photos[row]["id"]}"' for row in index.neighbours[0]]
    positions = [html.index(link) for link in expected]
    assert positions == sorted(positions), "similar photos must appear in ranked order"


def test_stored_scores_are_sorted_cosines(index):
    scores = index.scores
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert scores.min() >= -1.0 and scores.max() <= 1.0 + 1e-6


def test_every_link_on_the_gallery_and_a_photo_page_resolves(client):
    seen = set()
    for page in ("/", "/?page=2", "/photos/0", "/photos/57"):
        for url in links(client.get(page).get_data(as_text=True)):
            if url in seen:
                continue
            seen.add(url)
            response = client.get(url)
            assert response.status_code == 200, url
    assert any("/thumb.jpg" in url for url in seen) and any("/original" in url for url in seen)


def test_json_api_matches_the_index(client, index):
    data = client.get("/api/photos/3/similar").get_json()
    assert data["id"] == 3
    assert [item["id"] for item in data["similar"]] == [index.photos[r]["id"] for r in index.neighbours[3]]
    assert [item["score"] for item in data["similar"]] == sorted((item["score"] for item in data["similar"]), reverse=True)
    assert all(item["url"].endswith(f"/photos/{item['id']}") for item in data["similar"])


def test_healthz(client, index):
    assert client.get("/healthz").get_json() == {"status": "ok", "photos": len(index.photos)}


@pytest.mark.parametrize("url", ["/photos/99999", "/photos/-1", "/photos/abc", "/?page=999", "/?page=0", "/api/photos/99999/similar"])
def test_unknown_ids_and_pages_are_404(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/photos/../../etc/passwd",
        "/photos/..%2F..%2Fetc%2Fpasswd",
        "/photos/%2e%2e/%2e%2e/etc/passwd",
        "/photos/0/..%2F..%2F..%2Fetc%2Fpasswd",
        "/photos/0/original/../../../../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_path_traversal_gets_nothing(client, url):
    response = client.get(url)
    assert response.status_code in (400, 404)
    assert b"root:" not in response.data


def test_thumbnails_and_originals_are_cacheable(client):
    thumb = client.get("/photos/0/thumb.jpg")
    assert thumb.mimetype == "image/jpeg"
    assert "max-age=31536000" in thumb.headers["Cache-Control"]
    assert client.get("/photos/0/thumb.jpg", headers={"If-None-Match": thumb.headers["ETag"]}).status_code == 304
    original = client.get("/photos/0/original")
    assert original.status_code == 200 and "ETag" in original.headers


def test_pages_carry_security_headers(client):
    headers = client.get("/").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
