"""Search by photo: the index's own model embeds an upload exactly as precompute embedded the collection."""

from __future__ import annotations

from dataclasses import replace

import io
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

import app.search
from app import create_app
from core.index_file import read_index, write_index

QUERIES = ["100000.jpg", "100300.jpg", "114900.jpg"]


@pytest.fixture(scope="module")
def search_app(holidays_index: Path):
    return create_app(holidays_index)


@pytest.fixture(scope="module")
def client(search_app):
    return search_app.test_client()


def _upload(client, data: bytes, filename: str = "query.jpg", path: str = "/api/search"):
    return client.post(path, data={"photo": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def _id_of(index_path: Path, name: str) -> int:
    return next(p["id"] for p in read_index(index_path).photos if p["path"] == name)


@pytest.mark.parametrize("name", QUERIES)
def test_a_photo_from_the_collection_finds_itself_first(client, holidays_dir: Path, holidays_index: Path, name: str):
    response = _upload(client, (holidays_dir / name).read_bytes(), name)
    assert response.status_code == 200
    similar = response.get_json()["similar"]
    assert response.get_json()["ranked_by"] == "appearance"
    assert similar[0]["id"] == _id_of(holidays_index, name)
    assert similar[0]["score"] >= 0.99
    scores = [item["score"] for item in similar]
    assert scores == sorted(scores, reverse=True) and len(similar) == 24


def test_the_search_page_shows_ranked_results(client, holidays_dir: Path, holidays_index: Path):
    response = _upload(client, (holidays_dir / "100300.jpg").read_bytes(), "100300.jpg", path="/search")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Most similar to 100300.jpg" in html
    first = re.search(r'<a class="card" href="/photos/(\d+)"', html).group(1)
    assert int(first) == _id_of(holidays_index, "100300.jpg")
    assert re.search(r'similarity </span>(1\.00|0\.99)<', html)
    assert "ranked by overall appearance alone" in html  # the index's local evidence is not on the web server


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "The uploaded file is empty."),
        (b"name,score\nalpha,1\n", 415, "That is not a photo."),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, 415, "That is not a photo."),  # a JPEG signature and nothing else
        (_png(64, 64)[:60], 422, "The photo cannot be read"),  # a truncated PNG
        (_png(15_000, 15_000, "1"), 422, "decompression bomb"),  # 225 megapixels in a small file
    ],
    ids=["empty", "text", "jpeg-signature-only", "truncated-png", "pixel-bomb"],
)
def test_bad_uploads_get_a_clear_4xx(client, data: bytes, status: int, message: str):
    api = _upload(client, data)
    assert api.status_code == status
    assert message in api.get_json()["detail"]
    page = _upload(client, data, path="/search")
    assert page.status_code == status
    assert message in page.get_data(as_text=True) and 'role="alert"' in page.get_data(as_text=True)


def test_a_request_without_a_photo_is_a_400(client):
    response = client.post("/api/search", data={}, content_type="multipart/form-data")
    assert response.status_code == 400 and "form field 'photo'" in response.get_json()["detail"]


def test_uploads_over_the_limit_are_refused_with_413(holidays_index: Path, holidays_dir: Path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MAX_UPLOAD_MB", "0.01")  # about 10 kB; the holidays photos are larger
    client = create_app(holidays_index).test_client()
    photo = (holidays_dir / "100000.jpg").read_bytes()
    assert len(photo) > 0.01 * 2**20
    api = _upload(client, photo)
    assert api.status_code == 413 and "up to 0.01 MB" in api.get_json()["detail"]
    page = _upload(client, photo, path="/search")
    assert page.status_code == 413 and "The upload is too large" in page.get_data(as_text=True)


def test_uploads_are_kept_in_memory_not_spooled_to_disk(client, holidays_dir: Path, monkeypatch):
    """Werkzeug spools uploads over 500 kB to a temporary file unless the app says otherwise."""

    def no_temporary_files(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    monkeypatch.setattr("werkzeug.wrappers.request.default_stream_factory", no_temporary_files)
    photo = Image.open(holidays_dir / "100000.jpg").resize((1600, 1200))
    out = io.BytesIO()
    photo.save(out, "PNG")
    assert len(out.getvalue()) > 500 * 1024
    assert _upload(client, out.getvalue(), "big.png").status_code == 200


def test_the_model_is_loaded_once_when_first_queries_arrive_together(holidays_index: Path, holidays_dir: Path, monkeypatch):
    loads = []
    real_load = app.search._load_describer
    monkeypatch.setattr(app.search, "_load_describer", lambda info, threads: loads.append(info) or real_load(info, threads))
    monkeypatch.setenv("LOOKALIKE_SEARCHES_PER_WORKER", "4")  # all four at once, as a threaded worker would allow
    embedder = create_app(holidays_index).extensions["lookalike.search"]
    photo = (holidays_dir / "100000.jpg").read_bytes()
    results = [None] * 4

    def query(slot: int) -> None:
        results[slot] = embedder.embed(photo)

    threads = [threading.Thread(target=query, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert all(result is not None and abs(float(result @ results[0]) - 1) < 1e-5 for result in results)


def test_search_is_off_when_the_index_model_cannot_be_loaded(holidays_index: Path, tmp_path: Path, holidays_dir: Path):
    index = read_index(holidays_index)
    index = replace(index, model=replace(index.model, name="no-such-model"))
    foreign = tmp_path / "foreign.pkl"
    write_index(index, foreign)
    (tmp_path / index.thumbnail_dir).symlink_to(holidays_index.parent / index.thumbnail_dir)
    client = create_app(foreign).test_client()
    response = _upload(client, (holidays_dir / "100000.jpg").read_bytes())
    assert response.status_code == 503
    assert "Search by photo is off" in response.get_json()["detail"] and "no-such-model" in response.get_json()["detail"]
    page = client.get("/search").get_data(as_text=True)
    assert "Search by photo is off" in page and "<form" not in page.split("<main", 1)[1]
    assert client.get("/").status_code == 200 and client.get("/photos/0").status_code == 200


def test_the_app_does_not_import_torch(holidays_index: Path):
    """The web runtime has no torch; the app must start and serve every page but search without it."""
    program = (
        "import sys, app\n"
        f"client = app.create_app({str(holidays_index)!r}).test_client()\n"
        "for path in ('/', '/photos/0', '/search', '/api/photos/0/similar'):\n"
        "    assert client.get(path).status_code == 200, path\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'tqdm')))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_index_built_with_flip_averaging_finds_a_photo_from_its_mirror_image(holidays_dir: Path, tmp_path: Path):
    """The upload is embedded with the index's flip setting, so a mirrored photo matches its original exactly."""
    from precompute.build import BuildOptions, build_index

    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(holidays_dir.glob("1000*.jpg")) + sorted(holidays_dir.glob("1001*.jpg")):
        (photos / source.name).symlink_to(source)
    index_path = tmp_path / "index.pkl"
    build_index(photos, index_path, BuildOptions(model="efficientnet-lite0", flip=True, k=3, workers=0))
    assert read_index(index_path).model.flip is True
    mirrored = io.BytesIO()
    Image.open(holidays_dir / "100000.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, "PNG")
    response = _upload(create_app(index_path).test_client(), mirrored.getvalue(), "mirrored.png")
    assert response.status_code == 200
    best = response.get_json()["similar"][0]
    assert best["id"] == _id_of(index_path, "100000.jpg") and best["score"] >= 0.999
