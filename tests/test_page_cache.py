"""The page cache: pages a view marks are answered again before Flask, the same bytes and headers, within a budget.

Speed itself is measured in benchmarks/serving.py, never asserted here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import template_rendered

from app import create_app
from app.page_cache import RenderedPages
from core.index_file import read_index
from tests.support.tiny_index import build_tiny_index


def _fetch(index: Path, url: str, times: int):
    """Ask a fresh app for `url` `times` times; return the app, its responses and how many pages it rendered."""
    app = create_app(index)
    client = app.test_client()
    rendered: list[str] = []
    with template_rendered.connected_to(lambda sender, template, **extra: rendered.append(template.name), app):
        responses = [client.get(url) for _ in range(times)]
    return app, responses, len(rendered)


@pytest.mark.parametrize("url", ["/", "/?page=2&per_page=10", "/photos/7", "/photos/7?per_page=5", "/photos/8"])
def test_cached_pages_equal_fresh_renders(synthetic_index, url):
    from app import create_app
    from app.page_cache import RenderedPages

    cached = create_app(synthetic_index).test_client()
    uncached_app = create_app(synthetic_index)
    uncached_app.extensions["lookalike.pages"] = RenderedPages(max_bytes=0)
    uncached_app.extensions["lookalike.cards"] = RenderedPages(max_bytes=0)
    fresh = uncached_app.test_client().get(url)
    for other in ("/", "/?per_page=10", "/photos/7", "/photos/7?per_page=5"):  # cards cached by other pages
        cached.get(other)
    first, second = cached.get(url), cached.get(url)
    assert fresh.status_code == first.status_code == second.status_code == 200
    assert first.data == second.data == fresh.data
    assert first.headers["Content-Security-Policy"] == fresh.headers["Content-Security-Policy"]


def test_page_cache_keeps_the_most_recently_used_within_its_budget():
    from app.page_cache import RenderedPages

    renders = []
    page_bytes = RenderedPages(max_bytes=10**6)
    page_bytes.get_or_render("probe", lambda: "x" * 1000)
    cache = RenderedPages(max_bytes=2 * page_bytes.bytes)  # room for two 1000-character pages
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get_or_render(key, lambda key=key: renders.append(key) or key * 1000)
    assert renders == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    assert cache.bytes <= cache.max_bytes
    kept = cache.bytes
    big = cache.get_or_render("big", lambda: "z" * 5000)  # larger than the whole budget: served, not kept
    assert big == "z" * 5000 and cache.bytes == kept
    assert cache.get("a") == "a" * 1000 and cache.get("big") is None  # and it evicted nothing


@pytest.mark.parametrize("value", ["-1", "lots", "inf", ""])
def test_a_bad_page_cache_size_stops_the_app_with_one_clear_line(synthetic_index, monkeypatch, capsys, value):
    from app import create_app

    monkeypatch.setenv("LOOKALIKE_PAGE_CACHE_MB", value)
    with pytest.raises(SystemExit) as exit:
        create_app(synthetic_index)
    assert exit.value.code == 4
    assert f"LOOKALIKE_PAGE_CACHE_MB must be a number of megabytes, not {value!r}" in capsys.readouterr().err


def test_the_page_cache_budget_comes_from_the_environment(synthetic_index, monkeypatch):
    from app import create_app

    monkeypatch.setenv("LOOKALIKE_PAGE_CACHE_MB", "0")  # off: every page rendered afresh, still correct
    off = create_app(synthetic_index)
    assert off.test_client().get("/photos/3").status_code == 200
    assert off.extensions["lookalike.pages"].bytes == 0
    monkeypatch.setenv("LOOKALIKE_PAGE_CACHE_MB", "0.5")
    half = create_app(synthetic_index)
    assert half.extensions["lookalike.pages"].max_bytes == 2**19
    half.test_client().get("/photos/3")
    assert 0 < half.extensions["lookalike.pages"].bytes <= 2**19


def test_putting_a_key_again_replaces_its_entry_and_its_bytes():
    cache = RenderedPages(max_bytes=10**6)
    cache.put("page", b"x" * 1000, 1000)
    once = cache.bytes
    cache.put("page", b"y" * 500, 500)
    assert cache.get("page") == b"y" * 500 and cache.bytes == once - 500


@pytest.mark.parametrize("url", ["/", "/?page=1", "/?page=2&per_page=24", "/photos/7", "/photos/7?per_page=24"])
def test_a_page_asked_for_by_our_own_links_is_answered_without_rendering_it_again(synthetic_index, url):
    _, (first, second, third), renders = _fetch(synthetic_index, url, 3)
    assert renders == 1
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.data == second.data == third.data
    assert dict(first.headers) == dict(second.headers) == dict(third.headers)  # security headers included
    assert second.headers["Content-Security-Policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("url", ["/photos/7?x=1", "/photos/7?per_page=024", "/?page=02", "/?per_page=48&page=2", "/?page=2&page=2"])
def test_pages_asked_for_by_made_up_urls_are_served_but_never_kept(synthetic_index, url):
    app, (first, second), renders = _fetch(synthetic_index, url, 2)
    assert first.status_code == second.status_code == 200 and first.data == second.data
    assert renders == 2
    assert app.extensions["lookalike.pages"].bytes == 0


def test_only_successful_gets_are_kept(synthetic_index):
    app = create_app(synthetic_index)
    client = app.test_client()
    assert client.get("/photos/99999").status_code == client.get("/photos/99999").status_code == 404
    assert client.get("/?page=999").status_code == 404
    head = client.head("/photos/3")
    assert head.status_code == 200 and head.data == b""
    assert client.post("/photos/3").status_code == 405
    assert app.extensions["lookalike.pages"].bytes == 0
    assert client.get("/photos/3").status_code == 200
    assert app.extensions["lookalike.pages"].bytes > 0


def test_a_kept_photo_page_follows_its_original_leaving_and_coming_back(tmp_path: Path):
    index_path = build_tiny_index(tmp_path / "tiny")
    index = read_index(index_path)
    root = tmp_path / "photos"
    shutil.copytree(index.photo_root, root)
    photo = next(p for p in index.photos if p["path"] == "alpha.jpg")
    client = create_app(index_path, photo_root=root).test_client()
    url = f"/photos/{photo['id']}"

    def links_original() -> bool:
        html = client.get(url).get_data(as_text=True)
        assert ("/original" in html) != ("The full-size original is not on this server" in html)
        return "/original" in html

    assert links_original() and links_original()  # the second answer comes from the cache
    (root / "alpha.jpg").rename(tmp_path / "away.jpg")
    assert not links_original() and not links_original()
    (tmp_path / "away.jpg").rename(root / "alpha.jpg")
    assert links_original()
