"""All-pairs top-k neighbours: exact against faiss `IndexFlatIP`, and approx (`--neighbours auto`) against exact.

1. `precompute.neighbours.exact` against faiss's exact `IndexFlatIP`, random unit
   vectors of d = 512 (`--sizes`).
2. The IVF search (`precompute.neighbours.approximate`, what `auto` picks from 20,000
   photos) against today's exact path, on clustered 1280-d vectors, the
   default descriptor's size (`--approx-sizes`): time and recall@10. Below the
   auto threshold these rows show where approx stops paying.
3. `--million N`: approx alone at N photos (1,000,000 for the issue's goal);
   recall@10 against exact lists computed for 1,000 sampled rows.

Each search runs in a fresh process, so its peak RSS is its own; "extra"
memory is the peak minus what the process held once the embeddings were made,
which shows that the search is bounded by blocks, never N × N.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

import numpy as np

from benchmarks.measure import LoadAverage, Row, in_fresh_process, peak_rss_since_reset_mib, reset_peak_rss, rss_mib

DIM = 512
K = 10
DESCRIPTOR_DIM = 1280  # efficientnet-lite0's descriptor, the default
RECALL_SAMPLE = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("neighbours")
    group.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 50_000], metavar="N",
        help="collection sizes, random unit vectors of d=512 (default: %(default)s; try 100000)",
    )
    group.add_argument(
        "--approx-sizes", type=int, nargs="*", default=[20_000, 100_000], metavar="N",
        help="clustered 1280-d collections on which approx is compared with exact (default: %(default)s)",
    )
    group.add_argument(
        "--million", type=int, default=0, metavar="N",
        help="also time approx alone at N clustered 1280-d photos, e.g. 1000000 (needs N × 5 KB of memory and more)",
    )


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def search(kind: str, n: int) -> tuple[float, float, np.ndarray]:
    """In a child process: (seconds, memory the search added in MiB, neighbours) for one implementation."""
    vectors = unit_vectors(n)
    if kind == "ours":
        from precompute.neighbours.exact import top_k_neighbours

        before = _start_memory()
        started = time.perf_counter()
        neighbours, _ = top_k_neighbours(vectors, K)
    else:
        import faiss

        before = _start_memory()
        started = time.perf_counter()
        index = faiss.IndexFlatIP(DIM)
        index.add(vectors)
        _, found = index.search(vectors, K + 1)
        neighbours = _without_self(found)
    return time.perf_counter() - started, peak_rss_since_reset_mib() - before, neighbours


def _start_memory() -> float:
    """RSS now, from which the peak is measured: the vectors' own making does not count."""
    reset_peak_rss()
    return rss_mib()


def _without_self(found: np.ndarray) -> np.ndarray:
    """faiss finds each vector itself among its k + 1 nearest: drop it (or the last one, if absent)."""
    rows = np.arange(len(found))[:, None]
    keep = found != rows
    keep[keep.all(axis=1), -1] = False
    return found[keep].reshape(len(found), K).astype(np.int32)


def search_clustered(method: str, n: int, sample: int = 0) -> tuple[float, float, np.ndarray, float | None, float, str]:
    """In a child process: (seconds, memory added in MiB, neighbours, recall@10 on `sample` rows checked exactly or None,
    CPU s, the load average meanwhile)."""
    from benchmarks.synthetic_index import random_unit_vectors
    from precompute.neighbours.search import top_k
    from precompute.neighbours.exact import top_k_of_rows

    vectors = random_unit_vectors(n, DESCRIPTOR_DIM, clustered=True)
    before = _start_memory()
    with LoadAverage() as load:
        started, cpu = time.perf_counter(), time.process_time()
        neighbours, _ = top_k(vectors, K, method)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    added = peak_rss_since_reset_mib() - before
    recall = None
    if sample:
        rows = np.random.default_rng(7).choice(n, min(n, sample), replace=False)
        exact, _ = top_k_of_rows(vectors, rows, K)
        recall = recall_at_k(neighbours[rows], exact)
        neighbours = neighbours[rows]
    return seconds, added, neighbours, recall, cpu, load.describe()


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """The share of each row's exact k neighbours that `found` lists too, averaged over rows."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), exact.tolist())]))


def run(args: argparse.Namespace) -> Iterator[Row]:
    yield from _exact_rows(args)
    yield from _approx_rows(args)
    if args.million:
        (seconds, added, _, recall, cpu, load), peak = in_fresh_process(search_clustered, "auto", args.million, RECALL_SAMPLE)
        label = f"N={args.million:,}, clustered, d={DESCRIPTOR_DIM}, k={K}; {load}"
        from precompute.neighbours.search import resolve_method

        yield Row(f"neighbours with --neighbours auto ({resolve_method('auto', args.million)})", seconds / 60, None, "min",
                  "≤ 15 min", note=label)
        yield Row("the same search: CPU time, over the machine's cores", cpu / 60 / (os.cpu_count() or 1), None, "min",
                  note=f"{label}; its wall time on otherwise idle cores, if it kept them all busy")
        yield Row("recall@10 of auto against exact", recall, None, "", "≥ 0.98",
                  note=f"{label}, {RECALL_SAMPLE:,} rows checked exactly")
        yield Row("memory: peak of the process", peak / 1024, None, "GiB",
                  note=f"{label}; the vectors alone are {args.million * DESCRIPTOR_DIM * 4 / 2**30:.1f} GiB, "
                  f"the search added {added / 1024:.2f} GiB")


def _best_in_fresh_processes(work, kinds: tuple[str, ...], n: int, rounds: int) -> tuple[dict, dict]:
    """Run `work(kind, n)` for each kind, interleaved, `rounds` times in fresh processes.

    Returns each kind's fastest round's result, and its neighbours.
    `work` returns (seconds, memory added, neighbours, ...).
    """
    best: dict[str, tuple] = {}
    for _ in range(rounds):
        for kind in kinds:
            result, _ = in_fresh_process(work, kind, n)
            if kind not in best or result[0] < best[kind][0]:
                best[kind] = result
    return best, {kind: result[2] for kind, result in best.items()}


def _approx_rows(args: argparse.Namespace) -> Iterator[Row]:
    from precompute.neighbours.search import resolve_method

    for n in args.approx_sizes:
        best, results = _best_in_fresh_processes(search_clustered, ("approx", "exact"), n, args.rounds)
        label = f"N={n:,}, clustered, d={DESCRIPTOR_DIM}, k={K}; auto picks {resolve_method('auto', n)}"
        loads = f"approx: {best['approx'][5]}; exact: {best['exact'][5]}"
        yield Row("approx (IVF) vs exact", best["approx"][0], best["exact"][0], "s",
                  "ratio ≥ 1 where auto picks approx", higher_is_better=False, note=f"{label}; {loads}")
        yield Row("approx (IVF) vs exact: CPU time of the search", best["approx"][4], best["exact"][4], "s",
                  higher_is_better=False, note=label)
        yield Row("recall@10 of approx against exact", recall_at_k(results["approx"], results["exact"]), None, "", note=label)
        yield Row("memory added by the search, approx vs exact", best["approx"][1], best["exact"][1], "MiB",
                  higher_is_better=False, note=label)


def _exact_rows(args: argparse.Namespace) -> Iterator[Row]:
    for n in args.sizes:
        best, results = _best_in_fresh_processes(search, ("ours", "faiss"), n, args.rounds)
        label = f"N={n:,}, d={DIM}, k={K}"
        yield Row("all-pairs top-k: ours vs faiss IndexFlatIP", best["ours"][0], best["faiss"][0], "s",
                  "ratio ≥ 0.83 (within 1.2×)", higher_is_better=False, note=label)
        full_matrix = n * n * 4 / 2**20
        yield Row("memory added by the search, ours vs faiss", best["ours"][1], best["faiss"][1], "MiB",
                  f"≪ N×N = {full_matrix:,.0f} MiB", higher_is_better=False, note=label)
        same = np.mean(np.all(np.sort(results["ours"], axis=1) == np.sort(results["faiss"], axis=1), axis=1))
        yield Row("rows whose neighbours equal faiss's", 100 * same, None, "%", note=label)
