"""What one search may cost a worker: a pixel budget read from the header, one search at a time, one torch thread.

Memory is judged in a fresh process (its peak resident size, ru_maxrss, as
benchmarks/upload_limits.py measures it), so nothing the test suite itself
allocated counts. Times are in that benchmark, not here.
"""

from __future__ import annotations

from dataclasses import replace

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import app.search
from app import create_app
from app.search import UPLOAD_MAX_PIXELS
from benchmarks.upload_limits import BOMB, measured_in_a_fresh_process
from core.index_file import read_index, thumbnail_dir_for, write_index
from core.jpeg_scans import MAX_SCANS
from tests.support.hostile_photos import UPLOAD_BOMBS, scan_bomb, write_upload_bombs

# Far less than decoding one of them costs (380 MiB and more for 40 MP; benchmarks/README.md), far more than
# the uploads' bytes and their multipart copies.
REFUSED_PEAK_MIB = 100


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bombs")
    write_upload_bombs(folder, *BOMB)
    return folder


@pytest.mark.slow
def test_bombs_of_every_format_are_refused_from_the_header(tiny_index: Path, bombs: Path):
    assert BOMB[0] * BOMB[1] > UPLOAD_MAX_PIXELS, "over the upload budget, well under indexing's 200 MP"
    ordinary = Path(read_index(tiny_index).photo_root) / "alpha.jpg"
    measured = measured_in_a_fresh_process(tiny_index, ordinary, sorted(bombs.iterdir()))
    assert measured["warm_status"] == 200, "search works in that process: the bombs are refused for their size"
    assert measured["torch_threads"] == 1, "a worker's searches use one torch thread by default"
    assert sorted(measured["answers"]) == sorted(UPLOAD_BOMBS)
    for name, answer in measured["answers"].items():
        assert answer["status"] == 422, (name, answer["detail"])
        assert "8000 × 6000 pixels, over the 40-megapixel limit" in answer["detail"], name
        assert "decompression bomb" in answer["detail"], name
    growth = max(answer["peak_growth_mib"] for answer in measured["answers"].values())
    print(f"\npeak memory growth over six bomb uploads: {growth:.0f} MiB")
    assert growth < REFUSED_PEAK_MIB


def test_a_photo_within_the_budget_is_searched(client_and_photo):
    client, photo = client_and_photo
    assert _post(client, photo).status_code == 200


def test_a_scan_bomb_upload_is_refused_before_decoding(client_and_photo):
    """2000 empty scans in 160 KB: a pass over 36 MP each, had it been decoded."""
    client, _ = client_and_photo
    answer = _post(client, scan_bomb())
    assert answer.status_code == 422
    assert f"JPEG of over {MAX_SCANS} scans" in answer.get_json()["detail"]


def _post(client, data: bytes):
    return client.post("/api/search", data={"photo": (io.BytesIO(data), "query.jpg")}, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def client_and_photo(tiny_index: Path):
    return create_app(tiny_index).test_client(), (Path(read_index(tiny_index).photo_root) / "beta.jpg").read_bytes()


@contextmanager
def one_search_running(client, photo: bytes, monkeypatch) -> Iterator[list]:
    """A real search of `photo` in another thread, held inside its slot (where the model is fetched) until the block
    ends; yields the list its status then goes in."""
    started, finish = threading.Event(), threading.Event()
    real_describer = app.search.QueryEmbedder._loaded_describer

    def held_describer(embedder):
        started.set()
        finish.wait(60)
        return real_describer(embedder)

    monkeypatch.setattr(app.search.QueryEmbedder, "_loaded_describer", held_describer)
    first: list = []
    worker = threading.Thread(target=lambda: first.append(_post(client, photo).status_code))
    worker.start()
    try:
        assert started.wait(60)
        yield first
    finally:
        finish.set()
        worker.join()


def test_a_second_search_at_once_gets_a_clear_503(client_and_photo, monkeypatch):
    """One search runs in the worker; another arriving meanwhile is told to come back."""
    client, photo = client_and_photo
    with one_search_running(client, photo, monkeypatch) as first:
        second = _post(client, photo)
        page = client.post("/search", data={"photo": (io.BytesIO(photo), "q.jpg")}, content_type="multipart/form-data")
    assert second.status_code == 503 and "busy with other searches" in second.get_json()["detail"]
    assert page.status_code == 503 and "busy with other searches" in page.get_data(as_text=True)
    assert first == [200]
    assert _post(client, photo).status_code == 200, "the slot is given back"


def test_bombs_get_their_4xx_even_while_another_search_runs(client_and_photo, bombs: Path, monkeypatch):
    """The header checks come before the slot: a busy worker still tells a bomb what is wrong with it."""
    client, photo = client_and_photo
    with one_search_running(client, photo, monkeypatch) as first:
        pixels = _post(client, (bombs / "bomb.png").read_bytes())
        scans = _post(client, scan_bomb())
        ordinary = _post(client, photo)
    assert ordinary.status_code == 503, "the slot was held throughout"
    assert pixels.status_code == 422 and "over the 40-megapixel limit" in pixels.get_json()["detail"]
    assert scans.status_code == 422 and f"JPEG of over {MAX_SCANS} scans" in scans.get_json()["detail"]
    assert first == [200]


@pytest.mark.parametrize("variable", ["LOOKALIKE_SEARCHES_PER_WORKER", "LOOKALIKE_SEARCH_THREADS"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_search_settings_must_be_whole_numbers(tiny_index, variable, value, monkeypatch, capsys):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        create_app(tiny_index)
    assert f"{variable} must be a whole number of 1 or more, not {value!r}" in capsys.readouterr().err


def test_an_index_of_another_width_turns_search_off_at_start(tiny_index: Path, tmp_path: Path, capsys):
    """Its model says 1280-d, its embeddings are 8-d: one line at start, then 503s, never a 500 per search."""
    index = read_index(tiny_index)
    index = replace(index, embeddings=np.ascontiguousarray(index.embeddings[:, :8]))
    narrow = tmp_path / "index.pkl"
    write_index(index, narrow)
    thumbnail_dir_for(narrow).symlink_to(thumbnail_dir_for(tiny_index))
    client = create_app(narrow).test_client()
    line = "lookalike: Search by photo is off: the index holds 8-d embeddings, but its model 'efficientnet-lite0'"
    assert line in capsys.readouterr().err
    photo = (Path(index.photo_root) / "beta.jpg").read_bytes()
    response = _post(client, photo)
    assert response.status_code == 503 and "8-d embeddings" in response.get_json()["detail"]
    assert client.get("/photos/0").status_code == 200
