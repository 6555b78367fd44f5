"""`python -m benchmarks cluster`: the same photos built locally and through `--ray`, in one run, and the per-photo costs behind the scaling model.

The cluster is a real one on loopback (tests.support.ray_cluster): two raylets with one
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
from tests.support.datasets import HOLIDAYS

BATCH = 16  # several chunks even in the smaller run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--cluster-photos", type=int, default=128,
                       help="holidays-dev photos built both ways, and half as many, to fit fixed and per-photo costs (default: %(default)s)")
    group.add_argument("--cluster-nodes", type=int, default=2, help="raylets on loopback, one CPU each (default: %(default)s)")
    group.add_argument("--holidays", type=Path, default=HOLIDAYS, help="folder of photos (default: %(default)s)")


def run(args: argparse.Namespace) -> Iterator[Row]:
    if importlib.util.find_spec("ray") is None:
        print("cluster benchmark skipped: Ray is not installed (pip install -r requirements-cluster.txt)", file=sys.stderr)
        return
    if not args.holidays.is_dir():
        raise SystemExit(f"cluster benchmark: photo folder not found: {args.holidays}")
    from tests.support.ray_cluster import loopback_cluster

    options = BuildOptions(model="efficientnet-lite0", batch_size=BATCH)
    large, small = args.cluster_photos, args.cluster_photos // 2
    label = f"holidays-dev photos, default descriptor, batch {BATCH}, {args.cluster_nodes} raylets on these 2 cores"
    with tempfile.TemporaryDirectory(prefix="lookalike-cluster-") as work:
        folders = {size: _photo_folder(args.holidays, size, Path(work, f"photos-{size}")) for size in (small, large)}
        with loopback_cluster(nodes=args.cluster_nodes) as cluster:
            on_cluster = replace(options, ray=cluster.address)
            cold = _build_seconds(folders[small], Path(work, "cold"), on_cluster)
            best: dict[tuple[str, int], float] = {}
            for round_number in range(args.rounds):
                for size in (small, large):
                    for name, build_options in (("local", options), ("cluster", on_cluster)):
                        seconds = _build_seconds(folders[size], Path(work, f"{name}-{size}-{round_number}"), build_options)
                        best[name, size] = min(seconds, best.get((name, size), seconds))
            one_core = list(_per_photo_rows(folders[small], options, _serialisation_ms(folders[small], options)))
    fixed, per_photo = _fit(best, small, large)
    yield Row(f"whole build of {large} photos: cluster vs local ({label})", large / best["cluster", large], large / best["local", large],
              "photos/s", note="best round; the cluster's task workers warm, its actors started afresh as in every run")
    yield Row(f"first build on a fresh cluster, {small} photos: cluster vs local", cold, best["local", small], "s", higher_is_better=False,
              note="every worker and actor process starts and imports torch")
    yield Row(f"fixed cost per build, fitted from {small} and {large} photos: cluster vs local", fixed["cluster"], fixed["local"], "s",
              higher_is_better=False, note="model load, scan, neighbours and the index file in both; join, storage check, actors on the cluster")
    yield Row(f"time per added photo, fitted from {small} and {large} photos: cluster vs local", per_photo["cluster"] * 1000,
              per_photo["local"] * 1000, "ms", higher_is_better=False)
    yield from one_core


def _fit(seconds: dict[tuple[str, int], float], small: int, large: int) -> tuple[dict[str, float], dict[str, float]]:
    """Fixed cost and cost per photo of each path, from its builds of `small` and `large` photos (a straight line)."""
    fixed, per_photo = {}, {}
    for name in ("local", "cluster"):
        per_photo[name] = (seconds[name, large] - seconds[name, small]) / (large - small)
        fixed[name] = seconds[name, small] - small * per_photo[name]
    return fixed, per_photo


def _photo_folder(source: Path, count: int, folder: Path) -> Path:
    folder.mkdir()
    for photo in sorted(source.glob("*.jpg"))[:count]:
        (folder / photo.name).symlink_to(photo)
    return folder


def _build_seconds(folder: Path, out: Path, options: BuildOptions) -> float:
    started = time.perf_counter()
    build_index(folder, out / "index.pkl", options)
    return time.perf_counter() - started


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
