"""The gallery and photo pages, served in-process from a small index built with the real pipeline."""

from __future__ import annotations

from dataclasses import replace

import re
import shutil
from pathlib import Path

import pytest

from app import create_app
from core.index_file import PhotoTable, read_index, write_index


@pytest.fixture(scope="module")
def client(tiny_index: Path):
    return create_app(tiny_index).test_client()


def _cards(html: str) -> list[str]:
    return re.findall(r'<a class="card" href="([^"]+)"', html)


def test_gallery_shows_count_thumbnails_and_footer(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "5 photos" in html
    assert "model efficientnet-lite0" in html and "index built <time" in html
    assert len(_cards(html)) == 5
    for tag in re.findall(r"<img [^>]+>", html):
        assert 'loading="lazy"' in tag and re.search(r'width="\d+" height="\d+"', tag) and 'alt="' in tag
    assert 'alt="café.jpg"' in html


def test_thumbnails_keep_the_aspect_ratio(client):
    html = client.get("/").get_data(as_text=True)
    sizes = {alt: (int(w), int(h)) for alt, w, h in re.findall(r'alt="([^"]+)" loading="lazy"\s+width="(\d+)" height="(\d+)"', html)}
    assert sizes["beta.jpg"][0] < sizes["beta.jpg"][1]  # portrait stays portrait
    assert sizes["epsilon.jpg"] == (320, 160)


def test_pagination_keeps_the_page_size(client):
    first = client.get("/?per_page=2").get_data(as_text=True)
    assert len(_cards(first)) == 2
    assert "Page 1 of 3" in first and "showing 1–2" in first
    assert 'rel="next" data-key="ArrowRight" href="/?page=2&amp;per_page=2"' in first
    assert 'rel="prev"' not in first
    assert all(href.endswith("per_page=2") for href in _cards(first))
    last = client.get("/?page=3&per_page=2").get_data(as_text=True)
    assert len(_cards(last)) == 1 and "showing 5–5" in last
    assert 'rel="prev" data-key="ArrowLeft" href="/?page=2&amp;per_page=2"' in last and 'rel="next"' not in last


@pytest.mark.parametrize("query", ["page=4&per_page=2", "page=0", "page=abc", "per_page=-1"])
def test_pages_that_do_not_exist_are_friendly_404s(client, query):
    response = client.get(f"/?{query}")
    assert response.status_code == 404
    assert "Go to the gallery" in response.get_data(as_text=True)


def test_photo_page_shows_details_and_ranked_similar_photos(client, tiny_index: Path):
    photo = next(p for p in read_index(tiny_index).photos if p["path"] == "café.jpg")
    response = client.get(f"/photos/{photo['id']}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>café.jpg</h1>" in html
    size_kb = f"{photo['size'] / 1000:.1f} kB"
    assert f"<dd>{size_kb}</dd>" in html
    assert "800 × 600 px" in html
    scores = [float(s) for s in re.findall(r'<span class="visually-hidden">similarity </span>([0-9.]+)', html)]
    meters = [float(v) for v in re.findall(r'<meter min="0" max="1" value="([0-9.]+)"', html)]
    assert len(scores) == len(meters) == 3
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in meters)
    assert f'href="/photos/{photo["id"]}/original"' in html


def test_photo_page_links_back_to_its_gallery_page_and_neighbours(client):
    html = client.get("/photos/3?per_page=2").get_data(as_text=True)
    assert 'rel="up" data-key="Escape" href="/?page=2&amp;per_page=2#photo-3"' in html
    assert 'rel="prev" data-key="ArrowLeft" href="/photos/2?per_page=2"' in html
    assert 'rel="next" data-key="ArrowRight" href="/photos/4?per_page=2"' in html
    last = client.get("/photos/4").get_data(as_text=True)
    assert 'rel="next"' not in last and 'href="/?page=1#photo-4"' in last


def test_original_is_served_by_id(client, tiny_index: Path):
    index = read_index(tiny_index)
    photo = index.photos[0]
    response = client.get(f"/photos/{photo['id']}/original")
    assert response.status_code == 200
    assert response.data == (Path(index.photo_root) / photo["path"]).read_bytes()


def test_unknown_photo_is_a_friendly_404(client):
    page = client.get("/photos/999")
    assert page.status_code == 404 and "There is no photo with id 999." in page.get_data(as_text=True)
    api = client.get("/api/photos/999/similar")
    assert api.status_code == 404 and api.get_json()["detail"] == "There is no photo with id 999."


def test_missing_original_is_explained(tiny_index: Path, tmp_path: Path):
    index = read_index(tiny_index)
    root = tmp_path / "photos"
    shutil.copytree(index.photo_root, root)
    missing = next(p for p in index.photos if p["path"] == "alpha.jpg")
    (root / "alpha.jpg").unlink()
    client = create_app(tiny_index, photo_root=root).test_client()
    page = client.get(f"/photos/{missing['id']}")
    assert page.status_code == 200
    assert "The full-size original is not on this server" in page.get_data(as_text=True)
    assert "/original" not in page.get_data(as_text=True)
    original = client.get(f"/photos/{missing['id']}/original")
    assert original.status_code == 404
    assert "The original photo is no longer on disk." in original.get_data(as_text=True)


def test_empty_index_gets_a_friendly_gallery(tiny_index: Path, tmp_path: Path):
    index = read_index(tiny_index)
    index = replace(index, photos=PhotoTable.from_records([]), embeddings=index.embeddings[:0],
                    neighbours=index.neighbours[:0], scores=index.scores[:0],
                    verified=None if index.verified is None else index.verified[:0])
    empty = tmp_path / "empty.pkl"
    write_index(index, empty)
    client = create_app(empty).test_client()
    gallery = client.get("/")
    assert gallery.status_code == 200
    assert "No photos yet" in gallery.get_data(as_text=True) and "0 photos" in gallery.get_data(as_text=True)
    assert client.get("/photos/0").status_code == 404
    assert client.get("/healthz").get_json() == {"status": "ok", "photos": 0}


def test_static_files_are_versioned_and_cached_for_a_year(client):
    html = client.get("/").get_data(as_text=True)
    css = re.search(r'href="(/static/style\.css\?v=[0-9a-f]{12})"', html).group(1)
    script = re.search(r'src="(/static/keys\.js\?v=[0-9a-f]{12})"', html).group(1)
    for url in (css, script):
        response = client.get(url)
        assert response.status_code == 200
        assert "max-age=31536000" in response.headers["Cache-Control"] and "immutable" in response.headers["Cache-Control"]
    stale = client.get("/static/style.css?v=000000000000")
    assert "max-age=31536000" not in stale.headers.get("Cache-Control", "")


def test_originals_can_come_from_a_base_url(tiny_index: Path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_ORIGINALS_URL", "https://cdn.example.org/photos/")
    client = create_app(tiny_index).test_client()
    photo = next(p for p in read_index(tiny_index).photos if p["path"] == "café.jpg")
    response = client.get(f"/photos/{photo['id']}/original")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://cdn.example.org/photos/caf%C3%A9.jpg"


def test_pages_carry_security_headers(client):
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_nearest_ranks_the_whole_collection_when_asked_for_more(client):
    catalog = client.application.extensions["lookalike.catalog"]
    ranked = catalog.nearest(catalog.embeddings[2], k=24)
    assert [item.photo["id"] for item in ranked][:1] == [2] and ranked[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(ranked) == 5 and sorted(item.photo["id"] for item in ranked) == [0, 1, 2, 3, 4]
    assert [item.score for item in ranked] == sorted((item.score for item in ranked), reverse=True)
