"""Folders as albums, similar lists limited to a folder, and the gallery by date: through Flask's test client."""

from __future__ import annotations

from dataclasses import replace

import re
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from core.folder_scope import scoped_similar
from core.folders import Folders, _fingerprints, _group_exactly, _group_spans
from core.index_file import PhotoTable, path_columns, read_index, write_index
from tests.support.folder_tree import FILE_TIME_NS, NOT_UTF8, PHOTOS, build_folder_index
from tests.support.index_samples import without_metadata

LINK = re.compile(r'href="([^"]+)"')


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_folder_index(tmp_path_factory.mktemp("folders"))


@pytest.fixture(scope="module")
def index(index_path: Path) -> dict:
    return read_index(index_path)


@pytest.fixture(scope="module")
def client(index_path: Path):
    return create_app(index_path).test_client()


def ids_by_path(index: dict) -> dict[str, int]:
    return {photo["path"]: photo["id"] for photo in index.photos}


def shown_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="photo-(\d+)"', page)]


def table(paths: list[str]) -> PhotoTable:
    """A table with only the path columns: all `Folders` reads."""
    table = PhotoTable.__new__(PhotoTable)
    table.columns = path_columns([path.encode("utf-8", "surrogateescape") for path in paths])
    return table


def test_folder_tree_counts_and_ancestors_without_photos_of_their_own():
    folders = Folders(table(["a.jpg", "x/b.jpg", "x/y/c.jpg", "x/d.jpg", "z/w/q/e.jpg", f"{NOT_UTF8}/f.jpg"]))
    summary = {folders.folder(code).path: (folders.folder(code).photos, folders.folder(code).total) for code in range(len(folders))}
    assert summary == {"": (1, 6), "x": (2, 3), "x/y": (1, 1), "z": (0, 1), "z/w": (0, 1), "z/w/q": (1, 1), NOT_UTF8: (1, 1)}
    assert [folders.paths[code] for code in folders.of_row] == ["", "x", "x/y", "x", "z/w/q", NOT_UTF8]
    assert [f.name for f in folders.trail(folders.code("z/w/q"))] == ["", "z", "w", "q"]
    assert [f.path for f in folders.children(folders.code("x"))] == ["x/y"]
    assert folders.rows(folders.code("x")).tolist() == [1, 3]


def test_fingerprint_grouping_equals_exact_grouping_on_awkward_names():
    rng = np.random.default_rng(5)
    parts = ["a", "b", "ab", "ba", "x" * 7, "x" * 8, "x" * 9, "é", NOT_UTF8, "dir with spaces", "日本"]
    paths = ["/".join(rng.choice(parts, size=rng.integers(0, 4))) + f"/{i}.jpg" for i in range(2000)]
    paths = [path.lstrip("/") for path in paths]
    folders = Folders(table(paths))
    assert [folders.paths[code] for code in folders.of_row] == [path.rpartition("/")[0] for path in paths]
    columns = table(paths).columns
    starts, blob = columns["path_offsets"][:-1], columns["path_bytes"]
    lengths = np.array([len(path.rpartition("/")[0].encode("utf-8", "surrogateescape")) for path in paths])
    fast, exact = _group_spans(blob, starts, lengths)[0], _group_exactly(blob, starts, lengths)[0]
    pairs = set(zip(fast.tolist(), exact.tolist()))  # the same partition, whatever each calls its groups
    assert len(pairs) == len(set(fast.tolist())) == len(set(exact.tolist()))
    first, second = _fingerprints(blob, starts, lengths)
    assert len(set(zip(first.tolist(), second.tolist()))) == len(pairs)


def test_the_gallery_lists_top_folders_with_their_photo_counts(client):
    page = client.get("/").get_data(as_text=True)
    assert '<a href="/folders/shop/"><span class="folder-name">shop</span> <span class="folder-count">5 photos</span></a>' in page
    assert '<a href="/folders/caf%E9/"><span class="folder-name">caf\ufffd</span> <span class="folder-count">1 photo</span>' in page
    assert len(shown_ids(page)) == len(PHOTOS)  # the top of the gallery is every photo, as before


def test_a_folder_page_has_breadcrumbs_subfolders_and_only_its_own_photos(client, index):
    ids = ids_by_path(index)
    shop = client.get("/folders/shop/").get_data(as_text=True)
    assert re.search(r'<nav class="breadcrumbs".*<a href="/">All photos</a>.*aria-current="page">shop</a>', shop, re.S)
    assert "sofas</span> <span class=\"folder-count\">3 photos" in shop and "lamps</span> <span class=\"folder-count\">2 photos" in shop
    assert shown_ids(shop) == [] and "No photos directly in this folder" in shop
    sofas = client.get("/folders/shop/sofas/").get_data(as_text=True)
    assert '<a href="/folders/shop/">shop</a>' in sofas
    assert shown_ids(sofas) == [ids[p] for p in sorted(PHOTOS) if p.startswith("shop/sofas/")]
    assert '<p class="count">3 photos' in sofas


def test_a_folder_that_is_not_utf8_has_a_working_url(client, index):
    response = client.get("/folders/caf%E9/")
    assert response.status_code == 200
    assert shown_ids(response.get_data(as_text=True)) == [ids_by_path(index)[f"{NOT_UTF8}/old.jpg"]]
    assert "caf\ufffd" in response.get_data(as_text=True)  # shown with a replacement character, served by its bytes
    assert client.get("/folders/caf%C3%A9/").status_code == 404  # "café" in UTF-8 is another name, not in this collection


@pytest.mark.parametrize(
    "url",
    ["/folders/nowhere/", "/folders/shop/sofas/red-sofa.jpg/", "/folders/../",
     "/folders/shop/?sort=size", "/folders/shop/sofas/?page=2", "/folders/%00/", "/folders/shop/sofas/?page=0"],
)
def test_unknown_folders_and_pages_are_404(client, url):
    assert client.get(url).status_code == 404


def test_a_folder_without_its_slash_redirects_to_a_path(client):
    response = client.get("/folders/shop", headers={"Host": "evil.example"})
    assert response.status_code in (301, 308) and response.headers["Location"] == "/folders/shop/"


def test_the_gallery_by_date_is_newest_first_and_keeps_its_order_across_pages(client, index):
    taken = {photo["id"]: photo["taken"] for photo in index.photos}
    first = client.get("/?sort=date&per_page=3").get_data(as_text=True)
    second = client.get("/?page=2&per_page=3&sort=date").get_data(as_text=True)
    shown = shown_ids(first) + shown_ids(second)
    assert [taken[i] for i in shown] == sorted(taken.values(), reverse=True)[:6]
    assert 'href="/?page=2&amp;per_page=3&amp;sort=date"' in first
    assert '<input type="hidden" name="sort" value="date">' in first
    assert re.search(r'href="/photos/\d+\?per_page=3&amp;sort=date"', first)
    assert client.get("/?sort=date&per_page=3&page=3").status_code == 200
    assert client.get("/?sort=date&per_page=3&page=4").status_code == 404
    by_name = shown_ids(client.get("/?per_page=3").get_data(as_text=True))
    assert by_name != shown_ids(first)  # two orders, two pages: the page cache keys them apart


def test_a_folder_by_date(client, index):
    ids = ids_by_path(index)
    page = client.get("/folders/shop/sofas/?sort=date").get_data(as_text=True)
    assert shown_ids(page) == [ids["shop/sofas/red-sofa-2.jpg"], ids["shop/sofas/red-sofa.jpg"], ids["shop/sofas/blue-sofa.jpg"]]


def test_a_photo_page_in_date_order_steps_and_returns_in_date_order(client, index):
    ordered = [photo["id"] for photo in sorted(index.photos, key=lambda p: -p["taken"])]
    page = client.get(f"/photos/{ordered[1]}?per_page=3&sort=date").get_data(as_text=True)
    assert f'rel="prev" data-key="ArrowLeft" href="/photos/{ordered[0]}?per_page=3&amp;sort=date"' in page
    assert f'rel="next" data-key="ArrowRight" href="/photos/{ordered[2]}?per_page=3&amp;sort=date"' in page
    assert 'href="/?page=1&amp;per_page=3&amp;sort=date#photo-' in page


def test_photo_pages_show_date_camera_and_folder(client, index):
    ids = ids_by_path(index)
    sofa = client.get(f"/photos/{ids['shop/sofas/red-sofa.jpg']}").get_data(as_text=True)
    assert "<dt>Taken</dt><dd>1 May 2023, 10:00</dd>" in sofa
    assert "<dt>Camera</dt><dd>Canon EOS 5D</dd>" in sofa
    assert '<a href="/folders/shop/">shop</a></li><li><a href="/folders/shop/sofas/">sofas</a>' in sofa
    scan = client.get(f"/photos/{ids['shop/sofas/blue-sofa.jpg']}").get_data(as_text=True)
    assert "<dt>Taken</dt><dd>14 Jul 2017, 02:40 (file time)</dd>" in scan and "<dt>Camera</dt>" not in scan


def brute_force(index: dict, row: int, scope: str, k: int) -> list[int]:
    folders = [photo["path"].rpartition("/")[0] for photo in index.photos]
    embeddings = np.asarray(index.embeddings)
    similarity = embeddings @ embeddings[row]
    allowed = [r for r in range(len(folders)) if r != row and (folders[r] == folders[row]) == (scope == "folder")]
    return sorted(allowed, key=lambda r: -similarity[r])[:k]


@pytest.mark.parametrize("scope", ["folder", "others"])
def test_similar_in_a_folder_or_in_the_others_equals_a_brute_force_ranking(client, index, scope):
    k = index.neighbours.shape[1]
    for row, photo in enumerate(index.photos):
        page = client.get(f"/photos/{photo['id']}?in={scope}").get_data(as_text=True)
        similar = page.split('id="similar-heading"')[1]
        expected = [index.photos[r]["id"] for r in brute_force(index, row, scope, k)]
        assert shown_ids(similar) == expected, photo["path"]
        assert 'aria-current="true">' + ("this folder" if scope == "folder" else "other folders") in similar


def test_limiting_to_a_folder_looks_beyond_the_stored_lists_with_the_embeddings(index):
    folders = Folders(index.photos)
    k = index.neighbours.shape[1]
    looked_further = 0
    for row in range(len(index.photos)):
        for scope in ("folder", "others"):
            stored = scoped_similar(row, scope, folders, index.neighbours, index.scores, None)
            found = scoped_similar(row, scope, folders, index.neighbours, index.scores, index.embeddings)
            expected = brute_force(index, row, scope, k)
            assert found.complete and found.rows == expected
            np.testing.assert_allclose(found.scores, [float(index.embeddings[r] @ index.embeddings[row]) for r in found.rows],
                                       atol=1e-5)
            if not stored.complete:  # the stored lists could not fill it: without embeddings, what they hold and no more
                looked_further += 1
                assert len(stored.rows) < len(expected) and stored.rows == expected[: len(stored.rows)]
    assert looked_further > 0  # k = 3 of 7 photos in folders of up to 3: some list must look beyond the stored ones
    row = 0
    assert scoped_similar(row, "all", folders, index.neighbours, index.scores, None).rows == index.neighbours[row].tolist()


def test_an_unknown_scope_is_404(client, index):
    assert client.get(f"/photos/{index.photos[0]['id']}?in=elsewhere").status_code == 404
    assert client.get(f"/api/photos/{index.photos[0]['id']}/similar?in=elsewhere").status_code == 404


def test_the_api_limits_similar_photos_as_the_page_does(client, index):
    k = index.neighbours.shape[1]
    for row, photo in enumerate(index.photos):
        for scope in ("folder", "others"):
            listed = client.get(f"/api/photos/{photo['id']}/similar?in={scope}").json["similar"]
            assert [item["id"] for item in listed] == [index.photos[r]["id"] for r in brute_force(index, row, scope, k)]


def test_an_index_without_metadata_loads_sorts_by_file_time_and_shows_no_camera(index, tmp_path):
    records = [without_metadata(photo) for photo in index.photos]
    old = replace(index, photos=PhotoTable.from_records(records))
    write_index(old, tmp_path / "old.pkl")
    client = create_app(tmp_path / "old.pkl", photo_root=tmp_path).test_client()
    mtimes = {photo["id"]: photo["mtime_ns"] // 10**9 for photo in records}  # seconds, as dates are kept
    shown = shown_ids(client.get("/?sort=date").get_data(as_text=True))
    assert [mtimes[i] for i in shown] == sorted(mtimes.values(), reverse=True)
    page = client.get(f"/photos/{records[1]['id']}").get_data(as_text=True)
    assert re.search(r"<dt>Taken</dt><dd>[^<]+ \(file time\)</dd>", page) and "<dt>Camera</dt>" not in page
    assert client.get("/folders/shop/sofas/").status_code == 200


def test_folder_names_with_markup_are_escaped(tmp_path):
    from markupsafe import escape

    from precompute.build import BuildOptions, build_index
    from tests.support.tiny_index import write_photo

    name = '<img src=x onerror="y">&'
    photos = tmp_path / "photos"
    (photos / name).mkdir(parents=True)
    write_photo(photos / name / "a.jpg", 64, 48, (1, 2, 3))
    write_photo(photos / "b.jpg", 64, 48, (3, 2, 1))
    build_index(photos, tmp_path / "index.pkl", BuildOptions(model="efficientnet-lite0", k=1, workers=0))
    client = create_app(tmp_path / "index.pkl").test_client()
    page = client.get("/").get_data(as_text=True)
    assert "<img src=x" not in page and f'<span class="folder-name">{escape(name)}</span>' in page
    folder = client.get("/folders/%3Cimg%20src%3Dx%20onerror%3D%22y%22%3E%26/")
    assert folder.status_code == 200 and "<img src=x" not in folder.get_data(as_text=True)


def test_without_embeddings_a_limited_list_is_what_the_stored_lists_hold_and_says_so(index, tmp_path):
    bare = replace(index, embeddings=np.zeros((len(index.photos), 0), np.float32), model=replace(index.model, dim=0))
    write_index(bare, tmp_path / "bare.pkl")
    client = create_app(tmp_path / "bare.pkl", photo_root=tmp_path).test_client()
    folders = Folders(index.photos)
    short = [(row, scope) for row in range(len(index.photos)) for scope in ("folder", "others")
             if not scoped_similar(row, scope, folders, index.neighbours, index.scores, None).complete]
    assert short  # see test_limiting_to_a_folder_looks_beyond_the_stored_lists_with_the_embeddings
    for row, scope in short:
        page = client.get(f"/photos/{index.photos[row]['id']}?in={scope}").get_data(as_text=True)
        stored = scoped_similar(row, scope, folders, index.neighbours, index.scores, None)
        assert shown_ids(page.split('id="similar-heading"')[1]) == [index.photos[r]["id"] for r in stored.rows]
        assert ("looking further needs the embeddings" in page) == bool(stored.rows)
        assert bool(stored.rows) or "is among the stored similar photos" in page
