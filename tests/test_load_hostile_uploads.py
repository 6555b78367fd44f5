"""A bounded load test: on a real gunicorn, pages keep answering while hostile uploads arrive.

Two sync workers with gunicorn's default 30 s timeout, as the Procfile runs
them: a worker that one upload holds for 30 s is killed, which is what the
progressive-JPEG scan bomb did (issue #24). A few threads post hostile files
to search by photo while others fetch gallery, photo, thumbnail, duplicates and
API pages until the uploads are done. Every page must answer 200, every upload
a 4xx, and both workers must still be the ones that started. Counts, not
times: the requests' only time limit is the client's generous timeout.
"""

from __future__ import annotations

import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.load_test import fetch, worker_pids
from benchmarks.upload_limits import BOMB
from core.index_file import read_index
from tests.support.hostile_photos import scan_bomb, write_upload_bombs
from tests.support.live_server import free_port, running_server

pytestmark = pytest.mark.slow

WORKERS = 2
PAGE_THREADS = 3
UPLOAD_THREADS = 2
MIN_PAGES, MAX_PAGES = 60, 3000  # pages sent: at least this many, and on until the uploads are done, at most that


def _pages(index: Path) -> list[str]:
    ids = [photo["id"] for photo in read_index(index).photos]
    per_photo = [f"/photos/{i}" for i in ids] + [f"/photos/{i}/thumb.jpg" for i in ids]
    return ["/", "/?per_page=2&page=2", "/duplicates", f"/api/photos/{ids[0]}/similar", *per_photo]


def _load(index: Path, uploads: list[tuple[str, bytes]], log: Path) -> tuple[list, list, list[int], list[int]]:
    """Run the load on a fresh gunicorn: (page results, upload results, worker pids before, after)."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), "app:create_app()"]
    with running_server(command, port, log, {"LOOKALIKE_INDEX": str(index)}) as (_, server):
        before = sorted(worker_pids(server.pid, WORKERS))
        queue = iter(uploads)
        lock = threading.Lock()
        refused: list[tuple[str, int]] = []
        uploading = threading.Event()
        uploading.set()

        def upload() -> None:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                name, data = item
                refused.append((name, fetch(port, "/api/search", data)[0]))

        def browse(urls) -> list[tuple[str, int]]:
            answers = []
            for count, url in enumerate(urls):
                if count >= MIN_PAGES // PAGE_THREADS and not uploading.is_set():
                    break
                answers.append((url, fetch(port, url)[0]))
            return answers

        uploaders = [threading.Thread(target=upload) for _ in range(UPLOAD_THREADS)]
        for thread in uploaders:
            thread.start()
        pages = _pages(index)
        with ThreadPoolExecutor(PAGE_THREADS) as pool:
            browsing = [pool.submit(browse, itertools.islice(itertools.cycle(pages[n:] + pages[:n]), MAX_PAGES // PAGE_THREADS))
                        for n in range(PAGE_THREADS)]
            for thread in uploaders:
                thread.join()
            uploading.clear()
            answered = [answer for future in browsing for answer in future.result()]
        after = sorted(worker_pids(server.pid, WORKERS))
    return answered, refused, before, after


def _check(answered, refused, before, after, uploads, log: Path) -> None:
    failed_pages = [(url, status) for url, status in answered if status != 200]
    assert len(answered) >= MIN_PAGES and not failed_pages, failed_pages[:10]
    assert sorted(name for name, _ in refused) == sorted(name for name, _ in uploads)
    assert all(400 <= status < 500 for _, status in refused), refused
    text = log.read_text(errors="replace")
    assert before == after and "WORKER TIMEOUT" not in text, "a worker died under the uploads:\n" + text[-3000:]


@pytest.fixture(scope="module")
def decompression_bombs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """Every format's bomb (8000 × 6000), twice over."""
    paths = write_upload_bombs(tmp_path_factory.mktemp("load-bombs"), *BOMB)
    return [(path.name, path.read_bytes()) for path in paths] * 2


def test_pages_answer_while_decompression_bombs_arrive(tiny_index, decompression_bombs, tmp_path):
    log = tmp_path / "gunicorn.log"
    answered, refused, before, after = _load(tiny_index, decompression_bombs, log)
    _check(answered, refused, before, after, decompression_bombs, log)


def test_pages_answer_while_progressive_scan_bombs_arrive(tiny_index, tmp_path):
    uploads = [(f"scan-bomb-{n}.jpg", scan_bomb(scans=20_000)) for n in range(WORKERS)]  # one for each worker, at once
    log = tmp_path / "gunicorn.log"
    answered, refused, before, after = _load(tiny_index, uploads, log)
    _check(answered, refused, before, after, uploads, log)
