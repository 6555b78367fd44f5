"""The web app at a million photos: start-up, memory and page speed against 10k photos; search's memory; file size.

Synthetic indexes (`benchmarks.synthetic_index`, clustered 1280-d embeddings,
random neighbours: the web app's work does not depend on which photos are
neighbours). Served by gunicorn, 2 sync workers, --preload, as in production:

- ready: seconds from starting gunicorn until it serves the gallery, search off;
- memory: PSS of the master and both workers together after serving pages
  all over the collection, search off (LOOKALIKE_SEARCH=off);
- pages: requests/s for random gallery and photo pages, page cache off (every
  request renders), against the same server on 10k photos, same run;
- search on: a master and 2 forked workers (what gunicorn --preload does)
  that each rank the whole collection against a query, as a search by photo
  does, against the same processes with search off; growth against one copy
  of the embeddings; the same for "more like these" (ranked with search off:
  the embeddings are mapped either way, and read only by such a query);
- file size at 100k photos, format 2 against format 1 (a dict per photo,
  arrays inside the pickle) holding the same data.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.measure import Row, in_fresh_process, mapped_file_kib
from benchmarks.serving import WORKERS, _lua_random_path, gunicorn, memory_mib, worker_pids, wrk
from benchmarks.synthetic_index import as_format_1, write_synthetic_index

PER_PAGE = 48


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale")
    group.add_argument("--scale-photos", type=int, default=1_000_000, help="photos in the large index (default: %(default)s)")
    group.add_argument("--scale-baseline", type=int, default=10_000, help="photos in the baseline index (default: %(default)s)")
    group.add_argument("--scale-dim", type=int, default=1280, help="embedding dimension (default: %(default)s)")
    group.add_argument("--size-photos", type=int, default=100_000, help="photos in the index whose file size is reported (default: %(default)s)")


def run(args: argparse.Namespace) -> Iterator[Row]:
    with tempfile.TemporaryDirectory(prefix="lookalike-scale-") as folder:
        folder = Path(folder)
        yield from _file_size_rows(folder / "size", args)
        indexes = {
            n: write_synthetic_index(folder / str(n) / "index.pkl", n, neighbours="random", dim=args.scale_dim, clustered=True)
            for n in (args.scale_baseline, args.scale_photos)
        }
        yield from _served_rows(folder, indexes, args)
        yield from _search_memory_rows(indexes[args.scale_photos], args)


def _file_size_rows(folder: Path, args: argparse.Namespace) -> Iterator[Row]:
    from core.index_file import read_index

    folder.mkdir()
    index_path = write_synthetic_index(folder / "index.pkl", args.size_photos, neighbours="random", dim=args.scale_dim)
    with open(folder / "version-1.pkl", "wb") as out:
        pickle.dump(as_format_1(read_index(index_path)), out, protocol=5)
    ours, theirs = index_path.stat().st_size / 2**20, (folder / "version-1.pkl").stat().st_size / 2**20
    embeddings = args.size_photos * args.scale_dim * 4 / 2**20
    yield Row("index file: format 2 vs format 1, same data", ours, theirs, "MiB", higher_is_better=False,
              note=f"{args.size_photos:,} photos, {args.scale_dim}-d float32 embeddings: {embeddings:,.0f} MiB of it")


def _served_rows(folder: Path, indexes: dict[int, Path], args: argparse.Namespace) -> Iterator[Row]:
    ready, pss, rates = {}, {}, {}
    for n, index in indexes.items():
        started = time.perf_counter()
        with gunicorn("app:create_app()", {"LOOKALIKE_INDEX": str(index), "LOOKALIKE_SEARCH": "off"}) as (base, master):
            ready[n] = time.perf_counter() - started
            pss[n] = pss_after_serving(base, master, n)
    uncached = {"LOOKALIKE_SEARCH": "off", "LOOKALIKE_PAGE_CACHE_MB": "0"}
    big, small = args.scale_photos, args.scale_baseline
    with (
        gunicorn("app:create_app()", {**uncached, "LOOKALIKE_INDEX": str(indexes[big])}) as (big_base, _),
        gunicorn("app:create_app()", {**uncached, "LOOKALIKE_INDEX": str(indexes[small])}) as (small_base, _),
    ):
        for seed in range(1, args.rounds + 1):
            for kind, template, pages in (("gallery", "/?page=%d", lambda n: -(-n // PER_PAGE)), ("photo", "/photos/%d", lambda n: n)):
                for n, base in ((big, big_base), (small, small_base)):
                    low, high = (1, pages(n)) if kind == "gallery" else (0, pages(n) - 1)
                    script = _lua_random_path(folder, template, low, high, seed * 1000 + n % 997)
                    rate = wrk(base + "/", script, args.seconds, args.connections)["rps"]
                    rates[kind, n] = max(rate, rates.get((kind, n), 0.0))
    label = f"{big:,} vs {small:,} photos, {WORKERS} sync workers, --preload, search off"
    yield Row("gunicorn ready (serves the gallery)", ready[big], ready[small], "s", "ours ≤ 3 s",
              higher_is_better=False, note=label)
    yield Row("PSS, master + workers, after 200 photo and gallery pages", pss[big], pss[small], "MiB",
              "ours ≤ 350 MB (334 MiB)", higher_is_better=False, note=label)
    for kind in ("gallery", "photo"):
        yield Row(f"{kind} page, page cache off (every request renders)", rates[kind, big], rates[kind, small],
                  "req/s", "ratio ≥ 0.95", note=f"{label}, wrk -c{args.connections}, random URLs")


def pss_after_serving(base: str, master: int, photos: int) -> float:
    """PSS (MiB) of gunicorn's master and workers together, after 200 photo and gallery pages all over the collection."""
    for photo_id in range(0, photos, max(1, photos // 200)):
        _get(f"{base}/photos/{photo_id}")
        _get(f"{base}/?page={photo_id // PER_PAGE + 1}")
    return sum(memory_mib(pid)["pss"] for pid in [master, *worker_pids(master)])


def _get(url: str) -> None:
    with urllib.request.urlopen(url) as response:
        response.read()


def _search_memory_rows(index: Path, args: argparse.Namespace) -> Iterator[Row]:
    off, _ = in_fresh_process(forked_workers_pss, str(index), "off")
    on, _ = in_fresh_process(forked_workers_pss, str(index), "auto")
    feedback, _ = in_fresh_process(forked_workers_pss, str(index), "off", True)
    copy = on["embeddings"]
    label = f"{args.scale_photos:,} photos × {args.scale_dim}-d: one copy of the embeddings is {copy:,.0f} MiB; master + {WORKERS} forked workers"
    yield Row("PSS growth, search on vs one copy of the embeddings", on["total"] - off["total"], copy, "MiB",
              "one copy, not one a worker", higher_is_better=False, note=label)
    yield Row("PSS growth, more like these (search off) vs one copy", feedback["total"] - off["total"], copy, "MiB",
              "one copy, not one a worker", higher_is_better=False, note=label)
    yield Row("PSS of the mapped index file, search on vs off", on["mapped"], off["mapped"], "MiB", higher_is_better=False,
              note=label)


def forked_workers_pss(index_path: str, search: str, more_like_these: bool = False) -> dict[str, float]:
    """In a fresh process: load the app as gunicorn's master does, fork workers, and have each rank every photo.

    Ranked as a search by photo does when search is on, as "more like these"
    does (photo 0 liked) with `more_like_these`, not at all otherwise.

    Returns the PSS of master + workers in total, the part that maps the index
    file, and the size of the embeddings (MiB). Each worker serves a photo page
    first, so that the two settings differ only by the search.
    """
    import numpy as np

    os.environ["LOOKALIKE_SEARCH"] = search
    from app import create_app

    app = create_app(index_path)
    catalog = app.extensions["lookalike.catalog"]
    query = np.random.default_rng(0).standard_normal(catalog.model.dim).astype(np.float32)
    query /= np.linalg.norm(query)
    pids, releases = [], []
    for _ in range(WORKERS):
        ready_read, ready_write = os.pipe()
        release_read, release_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            app.test_client().get("/photos/1")
            if more_like_these:
                catalog.more_like([0], [], 24)
            elif search != "off":
                catalog.nearest(query, 24)
            os.write(ready_write, b"x")
            os.read(release_read, 1)  # stay alive, mapped, until measured
            os._exit(0)
        os.read(ready_read, 1)
        pids.append(pid)
        releases.append(release_write)
    processes = [os.getpid(), *pids]
    total = sum(memory_mib(pid)["pss"] for pid in processes)
    mapped = sum(mapped_file_kib(pid, Path(index_path).resolve())["Pss"] for pid in processes) / 1024
    for pid, release in zip(pids, releases):
        os.write(release, b"x")
        os.waitpid(pid, 0)
    embeddings = len(catalog) * catalog.model.dim * 4 / 2**20
    return {"total": total, "mapped": mapped, "embeddings": embeddings}
