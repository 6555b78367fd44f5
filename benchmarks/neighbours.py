"""All-pairs top-k neighbours: `precompute.neighbours` against faiss `IndexFlatIP`, exact, same data.

Each search runs in a fresh process, so its peak RSS is its own; "extra"
memory is the peak minus what the process held once the embeddings were made,
which shows that the search is bounded by blocks, never N × N.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np

from benchmarks.measure import Row, in_fresh_process, rss_mib

DIM = 512
K = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("neighbours")
    group.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 50_000], metavar="N",
        help="collection sizes, random unit vectors of d=512 (default: %(default)s; try 100000)",
    )


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def search(kind: str, n: int) -> tuple[float, float, np.ndarray]:
    """In a child process: (seconds, RSS before the search in MiB, neighbours) for one implementation."""
    vectors = unit_vectors(n)
    if kind == "ours":
        from precompute.neighbours import top_k_neighbours

        before = rss_mib()
        started = time.perf_counter()
        neighbours, _ = top_k_neighbours(vectors, K)
    else:
        import faiss

        before = rss_mib()
        started = time.perf_counter()
        index = faiss.IndexFlatIP(DIM)
        index.add(vectors)
        _, found = index.search(vectors, K + 1)
        neighbours = _without_self(found)
    return time.perf_counter() - started, before, neighbours


def _without_self(found: np.ndarray) -> np.ndarray:
    """faiss finds each vector itself among its k + 1 nearest: drop it (or the last one, if absent)."""
    rows = np.arange(len(found))[:, None]
    keep = found != rows
    keep[keep.all(axis=1), -1] = False
    return found[keep].reshape(len(found), K).astype(np.int32)


def run(args: argparse.Namespace) -> Iterator[Row]:
    for n in args.sizes:
        best: dict[str, tuple[float, float]] = {}
        results = {}
        for _ in range(args.rounds):
            for kind in ("ours", "faiss"):
                (seconds, before, neighbours), peak = in_fresh_process(search, kind, n)
                results[kind] = neighbours
                if kind not in best or seconds < best[kind][0]:
                    best[kind] = (seconds, peak - before)
        label = f"N={n:,}, d={DIM}, k={K}"
        yield Row("all-pairs top-k: ours vs faiss IndexFlatIP", best["ours"][0], best["faiss"][0], "s",
                  "ratio ≥ 0.83 (within 1.2×)", higher_is_better=False, note=label)
        full_matrix = n * n * 4 / 2**20
        yield Row("memory added by the search, ours vs faiss", best["ours"][1], best["faiss"][1], "MiB",
                  f"≪ N×N = {full_matrix:,.0f} MiB", higher_is_better=False, note=label)
        same = np.mean(np.all(np.sort(results["ours"], axis=1) == np.sort(results["faiss"], axis=1), axis=1))
        yield Row("rows whose neighbours equal faiss's", 100 * same, None, "%", note=label)
