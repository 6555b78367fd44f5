"""`python -m tools.evaluate.feedback`: does "not like this" help, and how much weight should it get?

A simulated visitor on holidays-dev: for each query photo (`NN == 00`) they
ask for more like it, and mark the best-ranked photo of another scene among
the first 10 results as "not like this". The refined ranking (both photos
left out) is scored by AP against the query's scene, for each unlike weight
of the Rocchio query (core.relevance_feedback), against weight 0 (the
rejected photo merely removed) on the same queries. As in
tools.evaluate.protocol, each half of the scenes is its own collection;
the weight is chosen on `tune` and judged on `confirm` with a paired
bootstrap interval. Queries without a wrong photo in their first 10 are
left out: no visitor would reject anything there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.index_file import Index, IndexFileError, read_index
from core.relevance_feedback import UNLIKE_WEIGHT, best_rows, feedback_query
from tools.evaluate.metrics import average_precision
from tools.evaluate.protocol import HALVES, paired_bootstrap, split_by_scene

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
SHOWN = 10  # results a visitor looks through for a photo to reject


def refined_aps(embeddings: np.ndarray, scenes: np.ndarray, queries: np.ndarray, weight: float) -> np.ndarray:
    """AP of each query that had a wrong photo in its first SHOWN results, after rejecting the first such photo."""
    aps = []
    for query in queries:
        first, _ = best_rows(embeddings, embeddings[query], SHOWN, exclude=[query])
        wrong = first[scenes[first] != scenes[query]]
        if len(wrong) == 0:
            continue
        refined = feedback_query(embeddings, [query], [wrong[0]], weight)
        ranked, _ = best_rows(embeddings, refined, len(embeddings), exclude=[query, wrong[0]])
        relevant = scenes[ranked] == scenes[query]
        aps.append(average_precision(relevant, int(relevant.sum())))
    return np.array(aps)


def report(index: Index) -> list[str]:
    ids = np.array([int(Path(p["path"]).stem) for p in index.photos])
    scenes = ids // 100
    aps = {}
    for half, rows in split_by_scene(scenes).items():
        queries = np.flatnonzero(ids[rows] % 100 == 0)
        embeddings = np.asarray(index.embeddings[rows])
        aps[half] = {weight: refined_aps(embeddings, scenes[rows], queries, weight) for weight in WEIGHTS}
    lines = ["| unlike weight | " + " | ".join(f"{half} mAP (vs 0)" for half in HALVES) + " |", "|---|---|---|"]
    for weight in WEIGHTS:
        cells = []
        for half in HALVES:
            cell = f"{aps[half][weight].mean():.3f}"
            if weight:
                cell += f" ({paired_bootstrap(aps[half][weight], aps[half][0.0])})"
            cells.append(cell)
        lines.append(f"| {weight:g} | " + " | ".join(cells) + " |")
    chosen = max(WEIGHTS[1:], key=lambda weight: aps["tune"][weight].mean())
    confirmed = paired_bootstrap(aps["confirm"][chosen], aps["confirm"][0.0])
    lines.append("")
    lines.append(f"Queries with a photo to reject: tune {len(aps['tune'][0.0])}, confirm {len(aps['confirm'][0.0])}. "
                 f"Chosen on tune: {chosen:g}; on confirm {confirmed} against weight 0 "
                 f"({'a gain' if confirmed.above_zero else 'no gain shown'}). The app uses {UNLIKE_WEIGHT:g}.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.feedback", description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="an index of holidays-dev (default: build one with the default descriptor)")
    parser.add_argument("--holidays", type=Path, default=DATASETS / "holidays-dev", help="holidays-dev folder")
    args = parser.parse_args(argv)
    try:
        if args.index is not None:
            print("\n".join(report(read_index(args.index))))
            return 0
        if not args.holidays.is_dir():
            print(f"error: data set not found: {args.holidays} (see ../shared/datasets/README.md)", file=sys.stderr)
            return 1
        from precompute.build import BuildOptions, build_index

        with tempfile.TemporaryDirectory(prefix="lookalike-feedback-") as folder:
            built = Path(folder) / "holidays.pkl"
            build_index(args.holidays, built, BuildOptions(model="efficientnet-lite0"))
            print("\n".join(report(read_index(built))))
    except IndexFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
