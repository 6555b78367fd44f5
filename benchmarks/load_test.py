"""A bounded load test: real gunicorn (2 workers) on 127.0.0.1, a few thousand mixed requests.

    .venv/bin/python -m benchmarks.load_test [--index INDEX] [--requests 3000] [--concurrency 8]
                                             [--searchers 2] [--threads 1]

Sends gallery pages, photo pages, thumbnails, previews, API calls and
requests that must 404 (unknown ids, pages past the end, traversal attempts),
from a pool of client threads. Passes when no request gets a 5xx and no
worker's memory grows between the first and the second half of the run
(beyond a small allowance). Without --index it first indexes holidays-dev
with efficientnet-lite0 into a temporary folder (a few minutes on a CPU).

Then the same page traffic runs again while `--searchers` clients upload
photos to POST /api/search back to back, and the page latencies (median, p95,
p99) with and without searches are compared: pages must not stall behind
searches. A search may be told 503 (the worker's search slot is taken); any
other 5xx fails the run. `--threads N` runs gthread workers with N threads.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.index_file import read_index
from tests.support.datasets import HOLIDAYS
from tests.support.live_server import free_port, running_server

RSS_ALLOWANCE_KIB = 8 * 1024  # growth per worker, second half of the run, still counted as flat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="index to serve (default: build one over holidays-dev)")
    parser.add_argument("--requests", type=int, default=3000, help="requests in the measured run (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker; over 1 is gthread (default: %(default)s)")
    parser.add_argument("--searchers", type=int, default=2, help="clients uploading searches in the second phase (default: %(default)s)")
    parser.add_argument("--photos", type=Path, default=HOLIDAYS, help="folder of JPEGs to upload (default: holidays-dev)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-load-") as tmp:
        index_path = args.index or build_holidays_index(Path(tmp))
        index = read_index(index_path)
        urls = mixed_urls(index, args.requests, random.Random(0))
        port = free_port()
        command = [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
                   "--workers", str(args.workers), "--threads", str(args.threads), "app:create_app()"]
        log = Path(tmp, "gunicorn.log")
        with running_server(command, port, log, {"LOOKALIKE_INDEX": str(index_path)}) as (_, server):
            workers = worker_pids(server.pid, args.workers)
            send(port, mixed_urls(index, 300, random.Random(1)), args.concurrency)  # warm-up: imports, templates
            rss = [worker_rss(workers)]
            half = len(urls) // 2
            results = send(port, urls[:half], args.concurrency)
            rss.append(worker_rss(workers))
            results += send(port, urls[half:], args.concurrency)
            rss.append(worker_rss(workers))
            uploads = [path.read_bytes() for path in sorted(args.photos.glob("*.jpg"))[:50]]
            send(port, [], 1, uploads, args.searchers, warm_up=True)  # each worker loads the model once
            with_searches, searches = send(port, urls, args.concurrency, uploads, args.searchers)
    ok = report(results, rss, len(index.photos))
    ok &= report_searches(results, with_searches, searches, args.searchers)
    return 0 if ok else 1


def build_holidays_index(folder: Path) -> Path:
    from precompute.build import BuildOptions, build_index

    print(f"Indexing {HOLIDAYS} with efficientnet-lite0 first (use --index to skip) ...", flush=True)
    index_path = folder / "index.pkl"
    build_index(HOLIDAYS, index_path, BuildOptions(model="efficientnet-lite0"))
    return index_path


def mixed_urls(index: dict, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, url) pairs in a realistic mix; the last kinds must all answer 404."""
    ids = [photo["id"] for photo in index.photos]
    pages = max(1, -(-len(ids) // 48))
    makers = [
        (20, "gallery page", lambda: f"/?page={rng.randint(1, pages)}"),
        (20, "photo page", lambda: f"/photos/{rng.choice(ids)}"),
        (30, "thumbnail", lambda: f"/photos/{rng.choice(ids)}/thumb.jpg"),
        (8, "preview", lambda: f"/photos/{rng.choice(ids)}/preview.jpg"),
        (7, "api similar", lambda: f"/api/photos/{rng.choice(ids)}/similar"),
        (5, "404 unknown id", lambda: f"/photos/{max(ids) + rng.randint(1, 10**6)}"),
        (5, "404 page past end", lambda: f"/?page={pages + rng.randint(1, 10**6)}"),
        (5, "404 traversal", lambda: rng.choice(["/static/%2e%2e/app/__init__.py", "/photos/0/..%2f..%2fetc%2fpasswd",
                                                  "/static/..%252f..%252fetc%252fpasswd", "/../../etc/passwd"])),
    ]
    weights = [weight for weight, _, _ in makers]
    chosen = rng.choices(makers, weights=weights, k=count)
    return [(kind, make()) for _, kind, make in chosen]


def worker_pids(master: int, count: int) -> list[int]:
    """The gunicorn master's worker processes, once all `count` have forked."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = [int(c) for c in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        if len(pids) >= count:
            return pids
        time.sleep(0.1)
    raise SystemExit(f"error: gunicorn started {len(pids)} of {count} workers")


def worker_rss(pids: list[int]) -> dict[int, int]:
    """Resident memory of each worker, KiB."""
    rss = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1])
    return rss


def fetch(port: int, url: str, upload: bytes | None = None) -> tuple[int, float]:
    """GET `url`, or POST `upload` to it as the multipart field `photo`; (status, seconds)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        if upload is None:
            connection.request("GET", url)
        else:
            body = (b"--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"q.jpg\"\r\n"
                    b"Content-Type: image/jpeg\r\n\r\n" + upload + b"\r\n--x--\r\n")
            connection.request("POST", url, body, {"Content-Type": "multipart/form-data; boundary=x"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except OSError:
        return 599, time.perf_counter() - started  # no answer at all counts as a server failure
    finally:
        connection.close()


def send(port: int, urls: list[tuple[str, str]], concurrency: int, uploads: list[bytes] | None = None,
         searchers: int = 0, warm_up: bool = False):
    """Send `urls` from `concurrency` threads; with `uploads`, `searchers` more threads search meanwhile.

    Returns the page results, or (page results, search results) when searching.
    """
    def one(item: tuple[str, str]) -> tuple[str, int, float]:
        kind, url = item
        return (kind, *fetch(port, url))

    if not uploads:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, urls))
    done = threading.Event()
    searches: list[tuple[str, int, float]] = []

    def search(offset: int) -> None:
        for n in itertools.count(offset):
            if (n - offset >= 4) if warm_up else done.is_set():
                return
            searches.append(("search", *fetch(port, "/api/search", uploads[n % len(uploads)])))

    searcher_threads = [threading.Thread(target=search, args=(i * 7,)) for i in range(searchers)]
    for thread in searcher_threads:
        thread.start()
    with ThreadPoolExecutor(concurrency) as pool:
        pages = list(pool.map(one, urls))
    done.set()
    for thread in searcher_threads:
        thread.join()
    return pages, searches


def report(results: list[tuple[str, int, float]], rss: list[dict[int, int]], photos: int) -> int:
    by_kind: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for kind, status, seconds in results:
        by_kind[kind].append((status, seconds))
    print(f"\nLoad test: {len(results)} requests over {photos} photos, gunicorn with {len(rss[0])} workers")
    print(f"{'kind':<20}{'requests':>9}{'2xx':>6}{'4xx':>6}{'5xx':>6}{'median ms':>11}{'p95 ms':>9}")
    for kind, answers_ in by_kind.items():
        codes = [status for status, _ in answers_]
        times = sorted(seconds * 1000 for _, seconds in answers_)
        print(f"{kind:<20}{len(answers_):>9}{sum(200 <= c < 300 for c in codes):>6}{sum(400 <= c < 500 for c in codes):>6}"
              f"{sum(c >= 500 for c in codes):>6}{statistics.median(times):>11.1f}{times[int(0.95 * (len(times) - 1))]:>9.1f}")
    print(f"\n{'worker':<10}{'RSS after warm-up':>19}{'after half':>12}{'after all':>11}{'2nd-half growth':>17}")
    growth = {}
    for pid in rss[0]:
        growth[pid] = rss[2][pid] - rss[1][pid]
        print(f"{pid:<10}{rss[0][pid] / 1024:>16.1f} MB{rss[1][pid] / 1024:>9.1f} MB{rss[2][pid] / 1024:>8.1f} MB"
              f"{growth[pid] / 1024:>14.1f} MB")
    failures = sum(status >= 500 for _, status, _ in results)
    wrong_404s = sum(status != 404 for kind, status, _ in results if kind.startswith("404"))
    ok = failures == 0 and wrong_404s == 0 and all(g <= RSS_ALLOWANCE_KIB for g in growth.values())
    print(f"\n5xx: {failures}; must-404 requests that did not: {wrong_404s}; "
          f"memory flat (second half grew ≤ {RSS_ALLOWANCE_KIB // 1024} MB per worker): "
          f"{all(g <= RSS_ALLOWANCE_KIB for g in growth.values())}. {'PASS' if ok else 'FAIL'}")
    return ok


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[int(fraction * (len(ordered) - 1))]


def report_searches(alone: list, with_searches: list, searches: list, searchers: int) -> bool:
    """Page latency without and with searches running, and how the searches fared; True when nothing failed."""
    print(f"\nPages while {searchers} clients search back to back (the same {len(with_searches)} page requests):")
    print(f"{'phase':<26}{'requests':>9}{'5xx':>6}{'median ms':>11}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, results in (("pages alone", alone), ("pages while searching", with_searches), ("searches", searches)):
        times = [seconds * 1000 for _, _, seconds in results] or [0.0]
        fives = sum(status >= 500 and not (kind == "search" and status == 503) for kind, status, _ in results)
        print(f"{name:<26}{len(results):>9}{fives:>6}{statistics.median(times):>11.1f}{percentile(times, 0.95):>9.1f}"
              f"{percentile(times, 0.99):>9.1f}{max(times):>9.1f}")
    answered = sum(status == 200 for _, status, _ in searches)
    busy = sum(status == 503 for _, status, _ in searches)
    failures = sum(status >= 500 for _, status, _ in with_searches) + len(searches) - answered - busy
    print(f"searches answered: {answered}, told busy (503): {busy}; other failures: {failures}. "
          f"{'PASS' if failures == 0 and answered else 'FAIL'}")
    return failures == 0 and answered > 0


if __name__ == "__main__":
    sys.exit(main())
