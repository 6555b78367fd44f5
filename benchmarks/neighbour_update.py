"""The neighbour step of an incremental run: updating the lists after adding 1% against computing them in full.

On clustered 1280-d vectors (the default descriptor's size), in one fresh
process: exact lists for N photos (the baseline, timed), then `fraction`·N
new photos are inserted at random rows and the lists are updated
(`precompute.neighbours.lists`, timed). The update is checked against exact
lists computed for 1,000 sampled rows of the grown collection. The
similarities computed are counted, not estimated.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np

from benchmarks.measure import LoadAverage, Row, in_fresh_process
from benchmarks.neighbours import DESCRIPTOR_DIM, K, RECALL_SAMPLE

QUERY_EXPANSION = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("neighbour-update")
    group.add_argument("--update-photos", type=int, default=50_000, metavar="N",
                       help="photos before the update, clustered 1280-d (default: %(default)s; the issue's goal: 200000)")
    group.add_argument("--update-fraction", type=float, default=0.01, help="new photos, as a share of N (default: %(default)s)")
    group.add_argument("--update-query-expansion", type=int, default=QUERY_EXPANSION, metavar="N",
                       help="αQE neighbours, as precompute's --query-expansion (default: %(default)s)")


def full_and_update(n: int, added: int, query_expansion: int) -> dict:
    """In a child process: time a full exact computation over n rows and an update adding `added` rows."""
    from benchmarks.synthetic_index import random_unit_vectors
    from precompute.neighbours.lists import PreviousLists, neighbour_lists
    from precompute.neighbours.exact import top_k_of_rows
    from precompute.neighbours.query_expansion import expand

    grown = random_unit_vectors(n + added, DESCRIPTOR_DIM, seed=3, clustered=True)
    is_new = np.zeros(n + added, bool)
    is_new[np.random.default_rng(4).choice(n + added, added, replace=False)] = True
    old = grown[~is_new]
    with LoadAverage() as load:
        started, cpu = time.perf_counter(), time.process_time()
        full = neighbour_lists(old, K, query_expansion, "exact")
        full_seconds, full_cpu = time.perf_counter() - started, time.process_time() - cpu
        previous = PreviousLists(np.flatnonzero(~is_new), full.neighbours, full.scores, full.expansion, query_expansion, "exact")
        started, cpu = time.perf_counter(), time.process_time()
        update = neighbour_lists(grown, K, query_expansion, "exact", previous)
        update_seconds, update_cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = np.random.default_rng(5).choice(n + added, min(n + added, RECALL_SAMPLE), replace=False)
    ranked_by = grown
    same = np.ones(len(rows), bool)
    if query_expansion:
        first, _ = top_k_of_rows(grown, rows, query_expansion)
        same &= (first == update.expansion[0][rows]).all(axis=1)
        ranked_by = expand(grown, *update.expansion, query_expansion)
    exact, _ = top_k_of_rows(ranked_by, rows, K)
    same &= (exact == update.neighbours[rows]).all(axis=1)
    return {
        "full_seconds": full_seconds, "update_seconds": update_seconds, "updated": update.updated,
        "full_cpu": full_cpu, "update_cpu": update_cpu, "load": load.describe(),
        "full_similarities": full.similarities, "update_similarities": update.similarities,
        "same": float(same.mean()),
    }


def run(args: argparse.Namespace) -> Iterator[Row]:
    n = args.update_photos
    added = max(1, round(n * args.update_fraction))
    result, _ = in_fresh_process(full_and_update, n, added, args.update_query_expansion)
    assert result["updated"], "the update computed the lists in full"
    label = (f"+{added:,} to N={n:,}, clustered, d={DESCRIPTOR_DIM}, k={K}, "
             f"αQE n={args.update_query_expansion}")
    yield Row("neighbour step: update vs full exact", result["update_seconds"], result["full_seconds"], "s",
              "ratio ≥ 20 (≤ 5% of full)", higher_is_better=False, note=f"{label}; {result['load']}")
    yield Row("neighbour step: update vs full exact, CPU time", result["update_cpu"], result["full_cpu"], "s",
              "ratio ≥ 20 (≤ 5% of full)", higher_is_better=False, note=label)
    yield Row("similarities computed: update vs full exact", result["update_similarities"] / 1e6,
              result["full_similarities"] / 1e6, "M", higher_is_better=False, note=label)
    yield Row("sampled rows whose updated list equals exact", 100 * result["same"], None, "%",
              "100 %", note=f"{label}, {RECALL_SAMPLE:,} rows")
