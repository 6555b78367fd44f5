"""`python -m precompute.evaluate`: how good and how fast is a descriptor configuration?

Builds real indexes with the given settings and prints one table row:
holidays-dev mAP, near-duplicate recall on imagenet-samples, and throughput.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from precompute.build import BuildError, BuildOptions, build_index
from precompute.cli import add_descriptor_arguments, descriptor_options
from precompute.evaluate.metrics import mean_average_precision, recall_of_originals
from precompute.evaluate.near_duplicates import make_copies
from precompute.index_file import read_index
from precompute.models import ModelUnavailable
from precompute.neighbour_lists import neighbour_lists
from precompute.query_expansion import expanded_descriptors

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
COLUMNS = ("configuration", "holidays mAP", "near-dup top-1", "near-dup top-10", "photos/s")


def evaluate_holidays(folder: Path, work: Path, options: BuildOptions) -> tuple[float, dict, float]:
    """mAP, the descriptor the index recorded, and its lists' recall@k against exact lists."""
    index = read_index(_build(folder, work / "holidays.pkl", options))
    ids = np.array([int(Path(p["path"]).stem) for p in index["photos"]])
    queries = np.flatnonzero(ids % 100 == 0)
    ranked_by = _ranked_by(index)
    recall = float(np.mean(list_recall(index)))
    return mean_average_precision(ranked_by, ids // 100, queries), index["model"], recall


def _ranked_by(index: dict) -> np.ndarray:
    model = index["model"]
    return expanded_descriptors(index["embeddings"], model["query_expansion"], model.get("neighbours", "exact"))


def list_recall(index: dict) -> np.ndarray:
    """Per row, the share of the exact pipeline's k neighbours that the index lists (1.0 for exact indexes)."""
    neighbours = index["neighbors"]
    exact = neighbour_lists(index["embeddings"], neighbours.shape[1], index["model"]["query_expansion"], "exact").neighbours
    return np.array([len(set(a) & set(b)) / len(b) for a, b in zip(neighbours.tolist(), exact.tolist())])


def listed_originals(index: dict, copy_rows: np.ndarray, original_rows: np.ndarray) -> tuple[float, float]:
    """Near-duplicate recall as a visitor sees it: is the original the copy's first listed photo, or among them?"""
    listed = index["neighbors"][copy_rows]
    return float(np.mean(listed[:, 0] == original_rows)), float(np.mean((listed == original_rows[:, None]).any(axis=1)))


def evaluate_near_duplicates(folder: Path, work: Path, options: BuildOptions, copies: int, seed: int) -> tuple[float, float, float, dict]:
    """Top-1 and top-10 recall of the originals, the photos/s of this build, and what its lists hold."""
    photos = work / "near-duplicates"
    (photos / "originals").mkdir(parents=True)
    originals = sorted(p for p in folder.iterdir() if p.is_file())
    for original in originals:
        (photos / "originals" / original.name).symlink_to(original)
    made = make_copies(originals, photos / "copies", copies, seed)
    started = time.monotonic()
    index = read_index(_build(photos, work / "near-duplicates.pkl", options))
    photos_per_s = len(index["photos"]) / (time.monotonic() - started)
    row = {p["path"]: r for r, p in enumerate(index["photos"])}
    copy_rows = np.array([row[f"copies/{name}"] for name in made])
    original_rows = np.array([row[f"originals/{original}"] for original, _ in made.values()])
    top1, top10 = recall_of_originals(_ranked_by(index), copy_rows, original_rows, k=10)
    recall = list_recall(index)
    is_copy = np.zeros(len(recall), bool)
    is_copy[copy_rows] = True
    lists = {
        "originals recall@10": float(recall[~is_copy].mean()),
        "edits recall@10": float(recall[is_copy].mean()),
        "listed top-1 / top-10": listed_originals(index, copy_rows, original_rows),
    }
    return top1, top10, photos_per_s, lists


def _build(folder: Path, out: Path, options: BuildOptions) -> Path:
    build_index(folder, out, options)
    return out


def describe(model: dict) -> str:
    """A short name for a configuration, from what the index recorded."""
    parts = [model["name"], f"{model['pooling']} pooling", "scales " + "+".join(map(str, model["scales"]))]
    if model.get("query_expansion"):
        parts.append(f"αQE n={model['query_expansion']}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m precompute.evaluate", description=__doc__.splitlines()[0])
    add_descriptor_arguments(parser)
    parser.add_argument("--holidays", type=Path, default=DATASETS / "holidays-dev", help="holidays-dev folder")
    parser.add_argument("--originals", type=Path, default=DATASETS / "imagenet-samples", help="photos to make near-duplicates of")
    parser.add_argument("--copies", type=int, default=200, help="edited copies to make (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the edits (default: %(default)s)")
    parser.add_argument("--record", type=Path, help="append the row to this Markdown table (e.g. docs/quality.md)")
    args = parser.parse_args(argv)
    for folder in (args.holidays, args.originals):
        if not folder.is_dir():
            print(f"error: data set not found: {folder} (see ../shared/datasets/README.md)", file=sys.stderr)
            return 1
    options = descriptor_options(args)
    try:
        with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as work:
            holidays_map, model, holidays_recall = evaluate_holidays(args.holidays, Path(work), options)
            top1, top10, speed, lists = evaluate_near_duplicates(args.originals, Path(work), options, args.copies, args.seed)
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    row = f"| {describe(model)} | {holidays_map:.3f} | {top1:.3f} | {top10:.3f} | {speed:.1f} |"
    listed_top1, listed_top10 = lists["listed top-1 / top-10"]
    print(
        f"Neighbour lists ({model.get('neighbours', 'exact')}): recall@10 against exact lists: holidays-dev "
        f"{holidays_recall:.3f}, {args.originals.name} {lists['originals recall@10']:.3f}, near-duplicate edits "
        f"{lists['edits recall@10']:.3f}; the original listed first for {listed_top1:.3f} of the edits, "
        f"among the listed for {listed_top10:.3f}."
    )
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    print(row)
    if args.record:
        with args.record.open("a", encoding="utf-8") as table:
            table.write(row + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
