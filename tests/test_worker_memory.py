"""Workers forked after the app loads keep sharing its memory: the garbage collector's and the mapped index's."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from benchmarks.measure import mapped_file_kib
from benchmarks.synthetic_index import write_synthetic_index


def _private_dirty_mib() -> float:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no Private_Dirty line in smaps_rollup")


def _copied_by_a_full_collection() -> float:
    before = _private_dirty_mib()
    gc.collect()
    return _private_dirty_mib() - before


def test_a_full_collection_in_a_forked_worker_copies_none_of_the_loaded_app(synthetic_index):
    create_app(synthetic_index)  # what gunicorn's --preload does in the master
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: a full collection walks every object it may free
        frozen = _copied_by_a_full_collection()
        gc.unfreeze()  # what it would have been without create_app's gc.freeze()
        unfrozen = _copied_by_a_full_collection()
        os.write(write, f"{frozen} {unfrozen}".encode())
        os._exit(0)
    os.close(write)
    frozen, unfrozen = map(float, os.read(read, 128).split())
    os.close(read)
    os.waitpid(pid, 0)
    # Unfrozen, the collector writes to every tracked object's header: the test process
    # holds torch and numpy, so tens of MiB of shared pages become the worker's own.
    assert frozen < unfrozen / 10, f"a collection copied {frozen:.1f} MiB into the worker, unfrozen {unfrozen:.1f}"
    assert unfrozen > 10, f"the control collection copied only {unfrozen:.1f} MiB"


def _anonymous_kib() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    raise AssertionError("no Anonymous line in smaps_rollup")


@pytest.fixture(scope="module")
def mapped_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 photos of 1280-d embeddings: 20 MiB of them, enough to tell sharing from copying."""
    return write_synthetic_index(tmp_path_factory.mktemp("mapped") / "index.pkl", 4000, neighbours="random").resolve()


RANKINGS = {  # the two queries that read every embedding: search by photo, and "more like these"
    "search by photo": lambda catalog, query: catalog.nearest(query, 3)[0].photo["id"],
    "more like these": lambda catalog, query: catalog.more_like([7], [], 3)[0].photo["id"],
}


@pytest.mark.parametrize("ranking", RANKINGS)
def test_forked_workers_share_the_mapped_embeddings_instead_of_copying_them(mapped_index, ranking):
    app = create_app(mapped_index)  # the master, as with --preload
    catalog = app.extensions["lookalike.catalog"]
    embeddings_kib = catalog.embeddings.nbytes / 1024
    query = catalog.embeddings[7].astype(np.float32)
    assert catalog.nearest(query, 3)[0].photo["id"] == 7  # the master's pages: the first sharer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker answering a query reads every embedding
        anonymous = _anonymous_kib()
        found = RANKINGS[ranking](catalog, query)
        memory = mapped_file_kib("self", mapped_index)
        report = [found, _anonymous_kib() - anonymous, memory["Rss"], memory["Pss"], memory["Private_Dirty"]]
        os.write(write, " ".join(map(str, report)).encode())
        os._exit(0)
    os.close(write)
    found, anonymous_growth, rss, pss, dirty = map(float, os.read(read, 256).split())
    os.close(read)
    os.waitpid(pid, 0)
    assert found == (7 if ranking == "search by photo" else catalog.nearest(query, 2)[1].photo["id"])
    assert rss >= embeddings_kib, f"only {rss:.0f} KiB of the index file mapped, the embeddings are {embeddings_kib:.0f}"
    assert pss <= 0.55 * rss, f"the worker's share of the mapped file is {pss:.0f} of {rss:.0f} KiB: not shared"
    assert dirty == 0 and anonymous_growth < embeddings_kib / 10, "the query copied the embeddings"


def test_the_embeddings_are_mapped_but_not_read_until_a_query_ranks_them(tmp_path, monkeypatch):
    """With search off, pages cost no embedding memory; "more like these" still works, reading them on demand."""
    monkeypatch.setenv("LOOKALIKE_SEARCH", "off")
    index = write_synthetic_index(tmp_path / "index.pkl", 4000, neighbours="random").resolve()  # mapped by no earlier app
    app = create_app(index)
    catalog = app.extensions["lookalike.catalog"]
    embeddings_kib = catalog.embeddings.nbytes / 1024
    client = app.test_client()
    for url in ("/", "/?page=40", "/photos/3", "/photos/3999", "/api/photos/5/similar"):
        assert client.get(url).status_code == 200
    resident = mapped_file_kib("self", index)["Rss"]
    assert resident < embeddings_kib / 10, f"{resident:.0f} KiB of the index file resident after pages, embeddings {embeddings_kib:.0f}"
    assert client.post("/api/search", data={}).status_code == 503
    assert "LOOKALIKE_SEARCH=off" in client.get("/search").get_data(as_text=True)
    assert client.get("/api/similar?like=3").status_code == 200
    assert mapped_file_kib("self", index)["Rss"] >= embeddings_kib, "the query did not read the embeddings"
