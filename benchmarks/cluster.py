"""`python -m benchmarks cluster`: the same photos built locally and through `--ray`, in one run, and the per-photo costs behind the scaling model.

The cluster is a real one on loopback (tests.ray_cluster): two raylets with one
CPU each, on the same 2 cores as the local run, so it cannot be faster here.
What it shows is the overhead the cluster path adds, split into a fixed
start-up (joining, the shared-storage check, worker and actor processes
starting and importing torch) and a cost per photo (the uint8 crops and photo
records pickled through Ray's object store). The per-photo CPU costs measured
on one core (prepare, inference, serialisation) feed the model in
benchmarks/README.md#cluster.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.measure import Row
from precompute.build import BuildOptions, build_index
from precompute.models import load_model
from precompute.prepare import prepare_photo
from precompute.runtime import make_runner
from precompute.scan import scan_photos

HOLIDAYS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "holidays-dev"
BATCH = 16  # several chunks even for a small run, so the steady state can be told from the start-up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--cluster-photos", type=int, default=128, help="holidays-dev photos built both ways (default: %(default)s)")
    group.add_argument("--cluster-nodes", type=int, default=2, help="raylets on loopback, one CPU each (default: %(default)s)")
    group.add_argument("--holidays", type=Path, default=HOLIDAYS, help="folder of photos (default: %(default)s)")


def run(args: argparse.Namespace) -> Iterator[Row]:
    if importlib.util.find_spec("ray") is None:
        print("cluster benchmark skipped: Ray is not installed (pip install -r requirements-cluster.txt)", file=sys.stderr)
        return
    if not args.holidays.is_dir():
        raise SystemExit(f"cluster benchmark: photo folder not found: {args.holidays}")
    from tests.ray_cluster import loopback_cluster

    options = BuildOptions(model="efficientnet-lite0", batch_size=BATCH)
    label = f"{args.cluster_photos} holidays-dev photos, default descriptor, batch {BATCH}"
    with tempfile.TemporaryDirectory(prefix="lookalike-cluster-") as work:
        folder = Path(work, "photos")
        folder.mkdir()
        for photo in sorted(args.holidays.glob("*.jpg"))[: args.cluster_photos]:
            (folder / photo.name).symlink_to(photo)
        count = args.cluster_photos
        with loopback_cluster(nodes=args.cluster_nodes) as cluster:
            on_cluster = replace(options, ray=cluster.address)
            local, remote = [], []
            for round_number in range(args.rounds):
                local.append(_timed_build(folder, Path(work, f"local-{round_number}", "index.pkl"), options))
                remote.append(_timed_build(folder, Path(work, f"cluster-{round_number}", "index.pkl"), on_cluster))
            serialisation = _serialisation_ms(folder, options)
        best_local = min(local, key=lambda t: t.total)
        best_remote = min(remote, key=lambda t: t.total)
        nodes = f"{args.cluster_nodes} raylets on these 2 cores"
        yield Row(f"whole build: cluster ({nodes}) vs local ({label})", count / best_remote.total, count / best_local.total, "photos/s",
                  note="the cluster cannot win on one machine: same cores, plus its overhead")
        yield Row(f"whole build, seconds: cluster vs local ({label})", best_remote.total, best_local.total, "s", higher_is_better=False)
        yield Row(f"before the first batch is back: cluster vs local, first round ({label})", remote[0].to_first, local[0].to_first, "s",
                  higher_is_better=False, note="cluster: join, storage check, worker and actor processes start (cold)")
        yield Row(f"before the first batch is back: cluster vs local, best later round ({label})",
                  min(t.to_first for t in remote[1:] or remote), min(t.to_first for t in local[1:] or local), "s", higher_is_better=False,
                  note="task workers reused; actors start again each run")
        yield Row(f"after the first batch: cluster vs local ({label})", best_remote.steady_rate(count), best_local.steady_rate(count), "photos/s")
        yield from _per_photo_rows(folder, options, serialisation)


class _Timing:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first = self.last = None
        self.first_count = 0
        self.total = 0.0

    def progress(self, count: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first, self.first_count = now, count
        self.last = now

    @property
    def to_first(self) -> float:
        return self.first - self.started

    def steady_rate(self, count: int) -> float:
        return (count - self.first_count) / (self.last - self.first)


def _timed_build(folder: Path, index_path: Path, options: BuildOptions) -> _Timing:
    timing = _Timing()
    build_index(folder, index_path, options, on_progress=timing.progress)
    timing.total = time.perf_counter() - timing.started
    return timing


def _per_photo_rows(folder: Path, options: BuildOptions, serialisation_ms: float) -> Iterator[Row]:
    """Single-core costs per photo, the inputs of the scaling model: prepare, inference, and the cluster's serialisation."""
    photos = scan_photos(folder).photos[:64]
    model = load_model(options.model, None, options.pooling, options.scales)
    with tempfile.TemporaryDirectory(prefix="lookalike-thumbs-") as thumbnails:
        started = time.process_time()
        prepared = [prepare_photo(i, photo, model.input_specs, Path(thumbnails)) for i, photo in enumerate(photos)]
        prepare_ms = (time.process_time() - started) * 1000 / len(photos)
    runner = make_runner(model, torch.device("cpu"), threads=1)
    crops = np.stack([p.pixels[0] for p in prepared])
    runner(crops[:BATCH])  # warm-up
    started = time.process_time()
    for start in range(0, len(crops), BATCH):
        runner(crops[start : start + BATCH])
    infer_ms = (time.process_time() - started) * 1000 / len(crops)
    crop_bytes = sum(p.pixels[0].nbytes for p in prepared) / len(prepared)
    yield Row("one core: prepare (read, hash, decode, 2 thumbnails, crop) per photo", prepare_ms, None, "ms", higher_is_better=False)
    yield Row("one core: inference per photo (ONNX Runtime, 1 thread, batch 16)", infer_ms, None, "ms", higher_is_better=False)
    yield Row("cluster only: a prepared batch through Ray's object store (put + get) per photo", serialisation_ms, None, "ms",
              higher_is_better=False, note=f"{crop_bytes / 1024:.0f} KiB of uint8 crop per photo (float32 would be 4×)")


def _serialisation_ms(folder: Path, options: BuildOptions) -> float:
    """What handing a task's result to an actor costs per photo: pickled into the object store and out again (on one node)."""
    import ray

    photos = scan_photos(folder).photos[:BATCH]
    model = load_model(options.model, None, options.pooling, options.scales)
    with tempfile.TemporaryDirectory(prefix="lookalike-thumbs-") as thumbnails:
        chunk = [prepare_photo(i, photo, model.input_specs, Path(thumbnails)) for i, photo in enumerate(photos)]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        ray.get(ray.put(chunk))
        best = min(best, time.perf_counter() - started)
    return best * 1000 / len(chunk)
