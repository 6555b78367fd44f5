"""Duplicates: finding the groups of a large collection, and a deep page of many groups against a short list.

- Groups of a million photos (`core.duplicate_groups.find_groups`, numpy
  union-find plus the keep-rule order) against SciPy's connected components of
  the same edges (compiled code, components only), in the same run: once with
  random lists, where the threshold joins random pairs into long chains (the
  hard case for the union-find's rounds), once for groups of three.
- `/duplicates` page 1,000 of 20,000 groups against page 1 of an index with
  20 groups, rendered by Flask with the page cache off, interleaved.
- `/duplicates` and `/api/duplicates?per_page=1` page 1 of an index whose first
  group holds `--duplicates-photos` photos (a chain) against the same page where
  that group holds only the photos a page shows of it: time and bytes, interleaved.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.measure import Row, best_of_interleaved
from benchmarks.synthetic_index import duplicate_lists, synthetic_photos, write_duplicates_index
from core.duplicate_groups import DEFAULT_THRESHOLD, find_groups

K = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("duplicates")
    group.add_argument("--duplicates-photos", type=int, default=1_000_000, help="photos to group (default: %(default)s)")
    group.add_argument("--duplicates-groups", type=int, default=20_000, help="groups in the paged index (default: %(default)s)")


def _random_lists(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random neighbours with scores spread over 0–1: 8 % of the entries pass 0.92, joining random pairs."""
    rng = np.random.default_rng(1)
    neighbours = ((np.arange(n)[:, None] + rng.integers(1, n, size=(n, K))) % n).astype(np.int32)
    scores = np.sort(rng.random((n, K), dtype=np.float32), axis=1)[:, ::-1].copy()
    return neighbours, scores


def _components_baseline():
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
    except ImportError:
        return None

    def components(neighbours: np.ndarray, scores: np.ndarray) -> None:
        sources, ranks = np.nonzero(scores >= np.float32(DEFAULT_THRESHOLD))
        n = len(neighbours)
        graph = coo_matrix((np.ones(len(sources), np.int8), (sources, neighbours[sources, ranks])), shape=(n, n))
        connected_components(graph, directed=False)

    return components


def _grouping_rows(args: argparse.Namespace) -> list[Row]:
    n = args.duplicates_photos
    photos = synthetic_photos(n, "0" * 40)
    baseline = _components_baseline()
    rows = []
    for label, (neighbours, scores) in (("random pairs (8 % of list entries pass)", _random_lists(n)), ("groups of three", duplicate_lists(n // 3, 3, n % 3))):
        contenders = {"ours": lambda: find_groups(neighbours, scores, photos, DEFAULT_THRESHOLD)}
        if baseline is not None:
            contenders["scipy"] = lambda: baseline(neighbours, scores)
        best = best_of_interleaved(args.rounds, **contenders)
        groups = find_groups(neighbours, scores, photos, DEFAULT_THRESHOLD)
        rows.append(Row(f"groups of {n:,} photos, {label} ({len(groups):,} groups): ours vs SciPy's components alone",
                        best["ours"].seconds, best["scipy"].seconds if "scipy" in best else None, "s",
                        higher_is_better=False, note="" if baseline else "SciPy not installed"))
    return rows


def _paging_rows(args: argparse.Namespace) -> list[Row]:
    from app import create_app

    previous = os.environ.get("LOOKALIKE_PAGE_CACHE_MB")
    os.environ["LOOKALIKE_PAGE_CACHE_MB"] = "0"  # render every request
    try:
        return _paging(args, create_app)
    finally:
        if previous is None:
            os.environ.pop("LOOKALIKE_PAGE_CACHE_MB")
        else:
            os.environ["LOOKALIKE_PAGE_CACHE_MB"] = previous


def _paging(args: argparse.Namespace, create_app) -> list[Row]:
    from app.duplicate_views import MEMBERS_SHOWN

    with tempfile.TemporaryDirectory(prefix="lookalike-duplicates-") as folder:
        def client(name: str, groups: int, huge_group: int = 0):
            index = write_duplicates_index(Path(folder) / name / "index.pkl", groups, 2, huge_group=huge_group)
            return create_app(index).test_client()

        few, many = client("few", 20), client("many", args.duplicates_groups)
        huge = client("huge", 20, huge_group=args.duplicates_photos)
        shown = client("shown", 20, huge_group=MEMBERS_SHOWN)  # the same cards on the page, and nothing more
        last = -(-args.duplicates_groups // 20)
        rows = [_versus(args, (many, f"/duplicates?page={last}"), (few, "/duplicates"),
                        f"/duplicates page {last:,} of {args.duplicates_groups:,} groups vs page 1 of 20 groups")]
        for url in ("/duplicates", "/api/duplicates?per_page=1"):
            rows.append(_versus(args, (huge, url), (shown, url),
                                f"{url} page 1, a group of {args.duplicates_photos:,} photos first vs of {MEMBERS_SHOWN}"))
    return rows


def _versus(args: argparse.Namespace, ours: tuple, baseline: tuple, figure: str) -> Row:
    """Milliseconds a request for ours takes against the baseline's, interleaved; the answers' sizes in the note."""
    sizes = []
    for client, url in (ours, baseline):
        answer = client.get(url)  # finds the groups once, as a worker does
        assert answer.status_code == 200, url
        sizes.append(len(answer.data))
    repeat = 50

    def requests(client, url):
        return lambda: [client.get(url) for _ in range(repeat)]

    best = best_of_interleaved(args.rounds, ours=requests(*ours), baseline=requests(*baseline))
    return Row(figure, 1000 * best["ours"].seconds / repeat, 1000 * best["baseline"].seconds / repeat, "ms",
               goal="ratio ≥ 0.8", higher_is_better=False, note=f"{sizes[0]:,} bytes vs {sizes[1]:,}")


def run(args: argparse.Namespace) -> list[Row]:
    return [*_grouping_rows(args), *_paging_rows(args)]
