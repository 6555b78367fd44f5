""""More like these" and "not like this": `/similar` and `GET /api/similar`, ranked by the Rocchio query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.feedback_views import MAX_PHOTOS, MAX_RESULTS
from benchmarks.synthetic_index import random_unit_vectors
from core.index_file import new_index, read_index, write_index
from core.relevance_feedback import UNLIKE_WEIGHT
from precompute.neighbours.query_expansion import expanded_descriptors
from precompute.neighbours.search import top_k
from tests.support.index_samples import photo_record


def _write(path: Path, embeddings: np.ndarray, neighbours: np.ndarray, scores: np.ndarray, **model) -> Path:
    n = len(embeddings)
    index = new_index([photo_record(i) for i in range(n)], embeddings, neighbours, scores,
                      model={"name": "test", "dim": embeddings.shape[1], "weights": "none", "preprocessing": {}, **model},
                      photo_root=str(path.parent), thumbnail_dir="thumbs", created="2026-01-01T00:00:00+00:00")
    write_index(index, path)
    return path


@pytest.fixture(scope="module")
def client(synthetic_index):
    return create_app(synthetic_index).test_client()


def _pairs(similar: list[dict]) -> list[tuple[float, int]]:
    """(score, id) best first, ties (equal scores as served, to 4 decimals) in id order: the order is theirs to choose."""
    return sorted(((item["score"], item["id"]) for item in similar), key=lambda pair: (-pair[0], pair[1]))


def test_a_query_of_one_photo_is_its_stored_similar_list(client, synthetic_index):
    k = read_index(synthetic_index).neighbours.shape[1]
    for photo_id in range(0, 120, 7):
        stored = client.get(f"/api/photos/{photo_id}/similar").json["similar"]
        asked = client.get(f"/api/similar?like={photo_id}&k={k}").json
        assert asked["like"] == [photo_id] and asked["unlike"] == []
        assert _pairs(asked["similar"]) == _pairs(stored)
        assert asked["similar"][0].keys() == stored[0].keys()  # the same shape as the photo's own API


def test_with_query_expansion_one_photo_ranks_by_its_own_descriptor(tmp_path):
    """The stored lists of an αQE index rank by expanded descriptors; "more like these" by the model's own (documented)."""
    embeddings = random_unit_vectors(300, 32, seed=4, clustered=True)
    neighbours, scores = top_k(expanded_descriptors(embeddings, 2), 10, "exact")
    client = create_app(_write(tmp_path / "index.pkl", embeddings, neighbours, scores, query_expansion=2)).test_client()
    differs = 0
    for photo_id in range(0, 300, 10):
        asked = [item["id"] for item in client.get(f"/api/similar?like={photo_id}&k=10").json["similar"]]
        own = np.argsort(-(embeddings @ embeddings[photo_id]), kind="stable")
        assert asked == [int(row) for row in own if row != photo_id][:10]
        differs += asked != neighbours[photo_id].tolist()
    assert differs > 0, "αQE changed no list: the test shows nothing"


def test_several_photos_rank_by_the_stated_rocchio_query_and_are_left_out(client, synthetic_index):
    embeddings = np.asarray(read_index(synthetic_index).embeddings)
    liked, unliked = [3, 40, 77], [5, 90]
    query = embeddings[liked].mean(axis=0) - UNLIKE_WEIGHT * embeddings[unliked].mean(axis=0)
    cosines = embeddings @ (query / np.linalg.norm(query))
    expected = [int(row) for row in np.argsort(-cosines, kind="stable") if row not in liked + unliked][:30]
    answer = client.get("/api/similar?like=3,40,77&unlike=5&unlike=90&k=30").json
    assert answer["like"] == liked and answer["unlike"] == unliked
    assert [item["id"] for item in answer["similar"]] == expected
    assert [item["score"] for item in answer["similar"]] == [round(float(max(0.0, cosines[i])), 4) for i in expected]


@pytest.fixture(scope="module")
def two_directions(tmp_path_factory: pytest.TempPathFactory):
    """Photo 0, then five photos towards one side of it (1-5) and five a little nearer, towards another (6-10)."""
    rng = np.random.default_rng(3)
    base = np.eye(8, dtype=np.float32)
    rows = [base[0]]
    rows += [base[0] + 0.9 * base[1] + 0.01 * rng.standard_normal(8) for _ in range(5)]
    rows += [base[0] + 0.7 * base[2] + 0.01 * rng.standard_normal(8) for _ in range(5)]
    embeddings = np.array(rows, np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    neighbours, scores = top_k(embeddings, 5, "exact")
    return create_app(_write(tmp_path_factory.mktemp("two") / "index.pkl", embeddings, neighbours, scores)).test_client()


def test_not_like_this_pushes_the_photo_and_its_look_alikes_down(two_directions):
    def ranking(query: str) -> list[int]:
        return [item["id"] for item in two_directions.get(f"/api/similar?{query}&k=10").json["similar"]]

    before = ranking("like=0")
    assert set(before[:5]) == {6, 7, 8, 9, 10}, "the nearer side comes first without feedback"
    after = ranking("like=0&unlike=8")
    assert 8 not in after and 0 not in after
    assert set(after[:5]) == {1, 2, 3, 4, 5} and set(after[5:]) == {6, 7, 9, 10}, "the rejected photo's side now comes last"


BAD_QUERIES = [
    ("", 400), ("like=", 400), ("like=abc", 400), ("like=1,,2", 400), ("like=1,", 400), ("like=-1", 400),
    ("like=01", 400), ("like=%EF%BC%91", 400), ("like=1e3", 400), ("like=1.0", 400), ("like=%00", 400),
    ("like=" + "9" * 30, 400), ("like=1&unlike=x", 400), ("unlike=1", 400), ("like=1,1", 400),
    ("like=1&like=1", 400), ("like=1&unlike=2,2", 400), ("like=1&unlike=1", 400), ("like=1&k=0", 400),
    (f"like=1&k={MAX_RESULTS + 1}", 400), ("like=1&k=abc", 400), ("like=1&k=" + "9" * 5000, 400), ("like=1&k=-1", 400),
    ("like=1&k=2.5", 400), ("like=1&k=%EF%BC%95", 400), ("like=" + ",".join(map(str, range(MAX_PHOTOS + 1))), 400),
    ("like=1,2&unlike=" + ",".join(map(str, range(3, MAX_PHOTOS + 2))), 400),
    ("like=99999", 404), ("like=1&unlike=120", 404), ("like=" + "9" * 18, 404),
]


@pytest.mark.parametrize("query, status", BAD_QUERIES)
def test_bad_queries_get_a_clear_4xx_never_a_5xx(client, query, status):
    api = client.get(f"/api/similar?{query}")
    assert api.status_code == status and api.json["detail"]
    page = client.get(f"/similar?{query}")
    assert page.status_code == status and api.json["detail"].split(":")[0] in page.text.replace("&#39;", "'")


def test_the_cap_and_the_largest_k_are_allowed(client):
    ids = ",".join(map(str, range(MAX_PHOTOS)))
    assert client.get(f"/api/similar?like={ids}").status_code == 200
    assert len(client.get(f"/api/similar?like=1&k={MAX_RESULTS}").json["similar"]) == 119  # every other photo


def test_the_result_page_holds_the_whole_query_in_a_get_form(client):
    page = client.get("/similar?like=3,5&unlike=7&k=12")
    assert page.status_code == 200
    html = page.text
    assert 'id="more-like-these" class="feedback" method="get" action="/similar"' in html
    assert '<input type="hidden" name="k" value="12">' in html
    for field, photo_id in (("like", 3), ("like", 5), ("unlike", 7)):
        assert f'name="{field}" value="{photo_id}" checked>' in html
    results = client.get("/api/similar?like=3,5&unlike=7&k=12").json["similar"]
    for item in results:  # each result offers both marks, unticked
        assert f'name="like" value="{item["id"]}">' in html and f'name="unlike" value="{item["id"]}">' in html
    assert html.count('<li id="photo-') == 3 + 12
    assert '<a href="/similar?like=3,5&amp;unlike=7">Show more results</a>' in html  # k=24, the default


def test_gallery_and_photo_pages_offer_picks_in_a_get_form(client):
    gallery = client.get("/").text
    assert '<form id="more-like-these" class="feedback-bar" method="get" action="/similar">' in gallery
    assert gallery.count('form="more-like-these" name="like"') == 48
    photo = client.get("/photos/3").text
    assert 'name="like" value="3" checked> This photo' in photo
    assert photo.count('form="more-like-these" name="like"') == 10


@pytest.fixture(scope="module")
def without_embeddings(tmp_path_factory: pytest.TempPathFactory):
    embeddings = random_unit_vectors(20, 8, seed=1)
    neighbours, scores = top_k(embeddings, 3, "exact")
    path = _write(tmp_path_factory.mktemp("bare") / "index.pkl", np.zeros((20, 0), np.float32), neighbours, scores)
    return create_app(path).test_client()


def test_without_embeddings_the_feature_is_hidden_and_the_api_says_why(without_embeddings):
    answer = without_embeddings.get("/api/similar?like=1")
    assert answer.status_code == 409 and "carries no embeddings" in answer.json["detail"]
    assert without_embeddings.get("/similar?like=1").status_code == 409
    for url in ("/", "/photos/1"):
        page = without_embeddings.get(url)
        assert page.status_code == 200 and "more-like-these" not in page.text and 'name="like"' not in page.text
    assert len(without_embeddings.get("/api/photos/1/similar").json["similar"]) == 3  # stored lists still work
