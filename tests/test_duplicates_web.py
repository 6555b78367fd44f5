"""/duplicates and /api/duplicates through Flask's test client, over synthetic indexes of known groups."""

import math
import re

import pytest

from app import create_app
from app.duplicate_views import DEFAULT_MEMBERS_PER_PAGE, MAX_PHOTOS_PER_PAGE, MEMBERS_SHOWN
from benchmarks.synthetic_index import write_duplicates_index
from core.duplicate_groups import DEFAULT_THRESHOLD, KEEP_RULE, find_groups
from core.index_file import read_index

GROUPS, GROUP_SIZE, SINGLES = 7, 3, 5


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    return write_duplicates_index(tmp_path_factory.mktemp("duplicates") / "index.pkl", GROUPS, GROUP_SIZE, SINGLES)


@pytest.fixture(scope="module")
def client(index_path):
    return create_app(index_path).test_client()


def test_the_page_shows_each_group_with_its_suggested_keep_first_and_the_rule(client, index_path):
    html = client.get("/duplicates").get_data(as_text=True)
    index = read_index(index_path)
    groups = find_groups(index.neighbours, index.scores, index.photos, DEFAULT_THRESHOLD)
    assert len(groups) == GROUPS
    assert f"{GROUPS} groups of {GROUPS * GROUP_SIZE} photos at similarity ≥ {DEFAULT_THRESHOLD:.2f}" in html
    assert KEEP_RULE in html
    shown = [int(i) for i in re.findall(r'<li id="photo-(\d+)"', html)]
    assert shown == [int(row) for number in range(GROUPS) for row in groups.group(number)]  # ids are rows here
    assert html.count('<p class="keep">Suggested keep</p>') == GROUPS
    first_group = html[html.index('class="duplicate-group"'):]
    first_group = first_group[: first_group.index("</ul>")]
    assert first_group.index("Suggested keep") < first_group.index('<li id="photo-', first_group.index("Suggested keep"))
    for fact in ("4000 × 3000", "3.0 MB", "album-000", "<dt>Taken</dt><dd>"):  # dimensions, file size, folder, date taken
        assert fact in first_group


def test_the_api_gives_the_same_groups_as_lists_of_photos(client, index_path):
    data = client.get("/api/duplicates?per_page=3&page=2").get_json()
    index = read_index(index_path)
    groups = find_groups(index.neighbours, index.scores, index.photos, DEFAULT_THRESHOLD)
    assert (data["groups_total"], data["photos_total"], data["pages"], data["page"]) == (GROUPS, GROUPS * GROUP_SIZE, 3, 2)
    assert [[photo["id"] for photo in group] for group in data["groups"]] == [groups.group(n).tolist() for n in (3, 4, 5)]
    for group in data["groups"]:
        assert [photo["suggested_keep"] for photo in group] == [True] + [False] * (GROUP_SIZE - 1)
        for photo in group:
            assert photo["url"] == f"/photos/{photo['id']}" and photo["thumbnail"].startswith(f"/photos/{photo['id']}/thumb.jpg")
            assert {"width", "height", "size", "taken", "taken_source", "exif_tags", "folder", "name"} <= photo.keys()
    similar = client.get("/api/photos/0/similar").get_json()["similar"][0]
    assert {"id", "url", "thumbnail"} <= similar.keys()  # the photo objects of the similar API


def test_the_threshold_in_the_url_changes_the_groups(client):
    html = client.get("/duplicates?threshold=0.98").get_data(as_text=True)
    assert "No duplicates at 0.98" in html and 'class="duplicate-group"' not in html
    assert client.get("/api/duplicates?threshold=0.97").get_json()["groups_total"] == GROUPS  # the threshold joins
    assert client.get("/api/duplicates?threshold=1").get_json()["threshold"] == 1.0


@pytest.mark.parametrize("threshold", ["abc", "0.3", "0.49", "1.5", "1.01", "0.905", "nan", "inf", "", "-0.9", "0x1", "٠.٩", "0.9" * 100])
def test_a_bad_threshold_is_a_400_that_says_the_bounds(client, threshold):
    page = client.get("/duplicates", query_string={"threshold": threshold})
    assert page.status_code == 400
    assert "from 0.50 to 1.00" in page.get_data(as_text=True)
    api = client.get("/api/duplicates", query_string={"threshold": threshold})
    assert api.status_code == 400 and "from 0.50 to 1.00" in api.get_json()["detail"]


@pytest.mark.parametrize("query", ["page=0", "page=4", "page=x", "per_page=0", "per_page=-1"])
def test_pages_that_do_not_exist_are_404(client, query):
    assert client.get(f"/duplicates?{query}&per_page=3" if "per_page" not in query else f"/duplicates?{query}").status_code == 404


def test_the_gallery_links_to_the_duplicates(client):
    assert 'href="/duplicates"' in client.get("/").get_data(as_text=True)
    assert 'href="/duplicates" aria-current="page"' in client.get("/duplicates").get_data(as_text=True)


def test_pages_link_to_each_other_with_the_threshold(client):
    html = client.get("/duplicates?threshold=0.95&per_page=2&page=2").get_data(as_text=True)
    assert 'href="/duplicates?threshold=0.95&amp;per_page=2"' in html  # page 1 has no page number
    assert 'href="/duplicates?threshold=0.95&amp;page=3&amp;per_page=2"' in html
    assert client.get("/duplicates?threshold=0.95&page=3&per_page=2").status_code == 200


TWENTY_THOUSAND = 20_000


def test_twenty_thousand_groups_page_without_making_every_photo(tmp_path):
    """A page makes the photo dicts of its own groups only, whichever page it is, and finds the groups once."""
    index = write_duplicates_index(tmp_path / "index.pkl", TWENTY_THOUSAND, 2, singles=100)
    app = create_app(index)
    photos = app.extensions["lookalike.catalog"].photos
    made = []
    records = photos.records
    photos.records = lambda rows: made.extend(rows) or records(rows)  # count every photo dict made
    client = app.test_client()
    for page in (1, 500, 1000):
        made.clear()
        html = client.get(f"/duplicates?page={page}").get_data(as_text=True)
        assert f"Page {page} of 1000" in html and f"{TWENTY_THOUSAND:,} groups" in html
        assert len(made) == 40 and html.count('class="duplicate-group"') == 20
    made.clear()
    data = client.get("/api/duplicates?page=200&per_page=100").get_json()
    assert data["groups_total"] == TWENTY_THOUSAND and len(data["groups"]) == 100
    assert 0 < len(made) <= 200  # the page's photos only (those of the page shown before are kept)
    assert app.extensions["lookalike.duplicates"].cache_info().misses == 1  # the groups were found once


HUGE = 5_000  # one group this large (a chain of look-alikes), then GROUPS small ones


@pytest.fixture(scope="module")
def huge_app(tmp_path_factory):
    index = write_duplicates_index(tmp_path_factory.mktemp("huge-group") / "index.pkl", 30, 2, singles=5, huge_group=HUGE)
    app = create_app(index)
    photos = app.extensions["lookalike.catalog"].photos
    app.made = []  # every photo dict made, by row
    records = photos.records
    photos.records = lambda rows: app.made.extend(rows) or records(rows)
    return app


def _cards(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="photo-(\d+)"', html)]


@pytest.mark.parametrize("per_page", [1, 20, 100])
def test_a_huge_group_shows_its_first_photos_and_links_to_the_rest(huge_app, per_page):
    """One request holds at most MAX_PHOTOS_PER_PAGE photos however large a group is and however many groups a page asks."""
    client = huge_app.test_client()
    huge_app.made.clear()
    page = client.get(f"/duplicates?per_page={per_page}")
    html = page.get_data(as_text=True)
    shown = min(MEMBERS_SHOWN, MAX_PHOTOS_PER_PAGE // per_page)
    cards = _cards(html)
    huge = huge_app.extensions["lookalike.duplicates"](DEFAULT_THRESHOLD).group(0)
    assert len(huge) == HUGE and cards[:shown] == huge[:shown].tolist()  # the group's first photos (ids are rows here)
    assert len(cards) <= MAX_PHOTOS_PER_PAGE and len(set(huge_app.made)) <= MAX_PHOTOS_PER_PAGE
    assert f"Group 1 · {HUGE:,} photos" in html and f'href="/duplicates/groups/1">All {HUGE:,} photos of group 1' in html
    assert len(page.data) < 2_000 * MAX_PHOTOS_PER_PAGE  # bytes: a few hundred cards, not 5,000
    huge_app.made.clear()
    data = client.get(f"/api/duplicates?per_page={per_page}").get_json()
    assert data["members_per_group"] == shown and len(data["groups"][0]) == shown
    assert sum(len(group) for group in data["groups"]) <= MAX_PHOTOS_PER_PAGE
    assert data["group_sizes"][0] == HUGE and data["group_urls"][0] == "/api/duplicates/groups/1"
    assert data["photos_total"] == HUGE + 60


def test_a_groups_own_pages_hold_every_photo_once_in_keep_order(huge_app):
    client = huge_app.test_client()
    groups = huge_app.extensions["lookalike.duplicates"](DEFAULT_THRESHOLD)
    seen, page, pages = [], 1, None
    while pages is None or page <= pages:
        data = client.get(f"/api/duplicates/groups/1?per_page=100000&page={page}").get_json()
        assert data["per_page"] == MAX_PHOTOS_PER_PAGE and len(data["photos"]) <= MAX_PHOTOS_PER_PAGE
        assert [photo["suggested_keep"] for photo in data["photos"]].count(True) == (page == 1)
        seen += [photo["id"] for photo in data["photos"]]
        pages, page = data["pages"], page + 1
    assert seen == groups.group(0).tolist() and (data["group"], data["size"]) == (1, HUGE)
    assert client.get(f"/api/duplicates/groups/1?per_page=100000&page={pages + 1}").status_code == 404

    html = client.get("/duplicates/groups/1?page=2").get_data(as_text=True)
    assert _cards(html) == groups.group(0)[DEFAULT_MEMBERS_PER_PAGE : 2 * DEFAULT_MEMBERS_PER_PAGE].tolist()
    assert "Suggested keep</p>" not in html and 'class="grid described continued"' in html
    assert 'href="/duplicates/groups/1?page=3"' in html and 'href="/duplicates/groups/1"' in html  # next, previous
    assert f"Page 2 of {math.ceil(HUGE / DEFAULT_MEMBERS_PER_PAGE)}" in html
    first = client.get("/duplicates/groups/1").get_data(as_text=True)
    assert first.count("Suggested keep</p>") == 1 and _cards(first)[0] == groups.group(0)[0]
    small = client.get("/duplicates/groups/2?threshold=0.95").get_data(as_text=True)
    assert _cards(small) == groups.group(1).tolist() and "pagination" not in small


@pytest.mark.parametrize("url", ["/duplicates/groups/0", "/duplicates/groups/32", "/duplicates/groups/01",
                                 "/duplicates/groups/x", "/duplicates/groups/1?page=0", "/api/duplicates/groups/99"])
def test_groups_that_do_not_exist_are_404(huge_app, url):
    assert huge_app.test_client().get(url).status_code == 404
