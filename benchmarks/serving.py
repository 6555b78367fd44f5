"""Serving: gunicorn (2 sync workers, --preload) on a synthetic 10k-photo index, loaded by wrk on 127.0.0.1.

The gallery and photo pages are compared with a trivial Flask page served the
same way in the same run and sent the same random URLs, wrk runs interleaved.
Our pages are measured twice: on a server that has cached them, as it has
after a while in service (each worker caches what it renders, 64 MiB of
pages by default), and on one whose page cache is off, where every request
renders its page. A private gallery (LOOKALIKE_PASSWORD) is measured against
the public one on photo pages, signed in: its page cache first checks the
session cookie. Also: how long a 100k-photo index takes to load, and how
much memory each worker holds with --preload.
"""

from __future__ import annotations

import argparse
import http.client
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from benchmarks.measure import Row, in_fresh_process
from benchmarks.synthetic_index import as_format_1, write_synthetic_index

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("serving")
    group.add_argument("--serve-photos", type=int, default=10_000, help="photos in the served index (default: %(default)s)")
    group.add_argument("--load-photos", type=int, default=100_000, help="photos in the index whose load is timed (default: %(default)s)")
    group.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (default: %(default)s)")
    group.add_argument("--connections", type=int, default=4, help="wrk connections (default: %(default)s)")
    group.add_argument("--warm-up", type=int, default=20,
                       help="seconds of sending each kind of page in turn, before measuring (default: %(default)s)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(app: str, env: dict[str, str], preload: bool = True, python: str = sys.executable) -> Iterator[tuple[str, int]]:
    """A gunicorn with WORKERS sync workers on a free local port, run by `python`; yields its base URL and master pid."""
    port = _free_port()
    command = [python, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning"]
    # The project's gunicorn.conf.py turns preloading on; an empty config file is the only way to turn it off.
    command += ["--preload"] if preload else ["--config", os.devnull]
    command.append(app)
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(base: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/", timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer at {base} within {timeout:.0f} s")


def worker_pids(base_pid: int) -> list[int]:
    children = Path(f"/proc/{base_pid}/task/{base_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def memory_mib(pid: int) -> dict[str, float]:
    """Rss, Pss (shared pages split between sharers) and private memory of one process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"], "private": fields["Private_Clean"] + fields["Private_Dirty"]}


def wrk(url: str, script: Path | None, seconds: int, connections: int, cookie: str | None = None) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from one wrk run."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors against {url}:\n{output}")
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", output, re.M).groups()
        result[f"p{percentile}"] = float(value) * _UNITS[unit]
    return result


def _signed_in_cookie(base: str, password: str) -> str:
    """Sign in on a private gallery's form, as a browser does; return the session cookie ("name=value")."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    form_cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode())[1]
    body = urlencode({"csrf_token": token, "password": password})
    connection.request("POST", "/login", body=body, headers={
        "Cookie": form_cookie, "Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 302:
        raise RuntimeError(f"signing in to {base} answered {response.status}")
    return response.getheader("Set-Cookie").split(";")[0]


def _lua_random_path(folder: Path, template: str, low: int, high: int, seed: int) -> Path:
    """A wrk script that asks for a random page or photo each time, so no single URL is favoured.

    Each round gets its own seed, so no round repeats another's sequence.
    """
    script = folder / f"random-{seed}-{abs(hash(template))}.lua"
    script.write_text(
        f'math.randomseed({seed})\nrequest = function()\n  return wrk.format(nil, string.format("{template}", math.random({low}, {high})))\nend\n'
    )
    return script


def _lua_every_path(folder: Path, template: str, low: int, high: int) -> Path:
    """A wrk script that asks for every page or photo in turn, round and round: the warm-up."""
    script = folder / f"every-{abs(hash(template))}.lua"
    script.write_text(
        f"counter = {high}\nrequest = function()\n  counter = counter < {high} and counter + 1 or {low}\n"
        f'  return wrk.format(nil, string.format("{template}", counter))\nend\n'
    )
    return script


def _load_catalog(path: str) -> float:
    """In a fresh process: seconds for the web app's Catalog to read and validate an index."""
    from app.catalog import Catalog

    started = time.perf_counter()
    Catalog.load(Path(path))
    return time.perf_counter() - started


def _format_1_load(path: str) -> float:
    """In a fresh process: seconds for a plain pickle.load of the same index in format 1 (a dict per photo)."""
    started = time.perf_counter()
    with open(path, "rb") as file:
        pickle.load(file)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> Iterator[Row]:
    if shutil.which("wrk") is None:
        raise SystemExit("serving benchmark: wrk not found (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="lookalike-serving-") as folder:
        folder = Path(folder)
        yield from _load_rows(folder, args)
        index = write_synthetic_index(folder / "serve" / "index.pkl", args.serve_photos)
        yield from _throughput_rows(folder, index, args)
        yield from _memory_rows(index, args)


def _load_rows(folder: Path, args: argparse.Namespace) -> Iterator[Row]:
    from core.index_file import read_index

    index = write_synthetic_index(folder / "load" / "index.pkl", args.load_photos, neighbours="random")
    format_1 = folder / "load" / "format-1.pkl"
    format_1.write_bytes(pickle.dumps(as_format_1(read_index(index)), protocol=5))
    ours = min(in_fresh_process(_load_catalog, str(index))[0] for _ in range(args.rounds))
    plain = min(in_fresh_process(_format_1_load, str(format_1))[0] for _ in range(args.rounds))
    size = index.stat().st_size / 2**20
    yield Row("index load at start-up: Catalog.load vs pickle.load of format 1", ours, plain, "s", "ours < 2 s",
              higher_is_better=False, note=f"{args.load_photos:,} photos, {size:.0f} MiB file")


def _throughput_rows(folder: Path, index: Path, args: argparse.Namespace) -> Iterator[Row]:
    targets = {
        "gallery": ("/?page=%d", 1, -(-args.serve_photos // 48)),
        "photo": ("/photos/%d", 0, args.serve_photos - 1),
    }
    cached_env = {"LOOKALIKE_INDEX": str(index)}
    uncached_env = {**cached_env, "LOOKALIKE_PAGE_CACHE_MB": "0"}
    private_env = {**cached_env, "LOOKALIKE_PASSWORD": "benchmark", "SECRET_KEY": "benchmark-secret-key-0123456789"}
    best: dict[str, dict[str, float]] = {}
    with (
        gunicorn("benchmarks.trivial_app:app", {}) as (trivial, _),
        gunicorn("app:create_app()", cached_env) as (cached, _),
        gunicorn("app:create_app()", uncached_env) as (uncached, _),
        gunicorn("app:create_app()", private_env) as (private, _),
    ):
        cookie = _signed_in_cookie(private, private_env["LOOKALIKE_PASSWORD"])
        with urllib.request.urlopen(cached + "/") as response:
            gallery_bytes = len(response.read())
        # Every page several times over, so that each worker has probably rendered and cached each one;
        # the other two servers keep nothing between requests and only settle.
        for template, low, high in targets.values():
            script = _lua_every_path(folder, template, low, high)
            wrk(cached + "/", script, args.warm_up, args.connections)
            for base in (trivial, uncached):
                wrk(base + "/", script, 2, args.connections)
        wrk(private + "/", _lua_every_path(folder, *targets["photo"]), args.warm_up, args.connections, cookie)
        for seed in range(1, args.rounds + 1):
            runs = {"trivial_sized": wrk(f"{trivial}/bytes/{gallery_bytes}", None, args.seconds, args.connections)}
            for name, (template, low, high) in targets.items():
                # Both sides get the same requests: generating random URLs costs wrk CPU on the same cores.
                script = _lua_random_path(folder, template, low, high, seed)
                runs[name] = wrk(cached + "/", script, args.seconds, args.connections)
                runs[f"{name}_uncached"] = wrk(uncached + "/", script, args.seconds, args.connections)
                runs[f"trivial_{name}"] = wrk(trivial + "/", script, args.seconds, args.connections)
                if name == "photo":
                    runs["photo_private"] = wrk(private + "/", script, args.seconds, args.connections, cookie)
            for name, result in runs.items():
                if name not in best or result["rps"] > best[name]["rps"]:
                    best[name] = result
    note = f"{args.serve_photos:,} photos, {WORKERS} sync workers, wrk -c{args.connections}, random URLs"
    for name in targets:
        trivial_run = best[f"trivial_{name}"]
        yield Row(f"{name} page (cached) vs trivial Flask page", best[name]["rps"], trivial_run["rps"], "req/s",
                  "ratio ≥ 0.85", note=note)
        for percentile in ("p50", "p99"):
            yield Row(f"{name} page (cached) latency {percentile} vs trivial", best[name][percentile],
                      trivial_run[percentile], "ms", higher_is_better=False, note=note)
        yield Row(f"{name} page, page cache off (every request renders) vs trivial",
                  best[f"{name}_uncached"]["rps"], trivial_run["rps"], "req/s", note=note)
    for percentile in ("rps", "p99"):
        yield Row(f"photo page (cached) {percentile}: private gallery, signed in, vs public",
                  best["photo_private"][percentile], best["photo"][percentile], "req/s" if percentile == "rps" else "ms",
                  higher_is_better=percentile == "rps", note=f"session cookie checked before the page cache; {note}")
    yield Row("gallery page (cached) vs trivial page of the same size", best["gallery"]["rps"],
              best["trivial_sized"]["rps"], "req/s", note=f"{gallery_bytes:,} bytes of HTML; {note}")


def _memory_rows(index: Path, args: argparse.Namespace) -> Iterator[Row]:
    """Each worker's memory after serving 200 photo pages, with and without --preload."""
    measured = {}
    for preload in (True, False):
        with gunicorn("app:create_app()", {"LOOKALIKE_INDEX": str(index)}, preload=preload) as (base, master):
            for photo_id in range(0, args.serve_photos, max(1, args.serve_photos // 200)):
                with urllib.request.urlopen(f"{base}/photos/{photo_id}") as response:
                    response.read()
            workers = [memory_mib(pid) for pid in worker_pids(master)]
        measured[preload] = {key: sum(w[key] for w in workers) / len(workers) for key in workers[0]}
    note = f"{args.serve_photos:,}-photo index, mean of {WORKERS} workers"
    yield Row("RSS per worker, --preload vs without", measured[True]["rss"], measured[False]["rss"], "MiB",
              higher_is_better=False, note=note)
    yield Row("PSS per worker (shared pages split), --preload vs without", measured[True]["pss"],
              measured[False]["pss"], "MiB", higher_is_better=False, note=note)
