"""`python -m tools.evaluate.float16`: would storing embeddings as float16 lose anything measurable?

Builds the holidays-dev and near-duplicate indexes once (descriptor options as
for `python -m tools.evaluate`), then measures on the same embeddings,
stored as float32 and as float16 (rounded, then used as float32):

- holidays-dev mAP and near-duplicate recall, as `tools.evaluate` reports them;
- search agreement: every photo's float32 descriptor (what an upload of that
  photo gives) ranks the collection as a search by photo does; how many of the
  top-24 lists are identical, in order, and how much they overlap;
- the largest change of a cosine score.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.index_file import read_index
from precompute.build import BuildError, BuildOptions, build_index
from precompute.cli import add_descriptor_arguments, descriptor_options
from precompute.models import ModelUnavailable
from precompute.neighbours.query_expansion import expanded_descriptors
from tools.evaluate.metrics import mean_average_precision, recall_of_originals
from tools.evaluate.near_duplicates import make_copies

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
HOLIDAYS, ORIGINALS = DATASETS / "holidays-dev", DATASETS / "imagenet-samples"
COPIES = 200  # edited copies of imagenet-samples, as `python -m tools.evaluate` makes by default
SEARCH_RESULTS = 24  # what the search page shows


def stored(embeddings: np.ndarray, dtype: str) -> np.ndarray:
    """The embeddings as an index storing them in `dtype` gives them back."""
    return np.asarray(embeddings).astype(dtype).astype(np.float32)


def top(queries: np.ndarray, collection: np.ndarray, k: int) -> np.ndarray:
    """Each query's k best rows, best first (ties by row), as app.catalog.Catalog.nearest ranks them."""
    scores = queries @ collection.T
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return best


def agreement(embeddings: np.ndarray, k: int = SEARCH_RESULTS) -> tuple[float, float, float]:
    """(identical top-k lists, mean overlap of the top-k sets, largest score change) of float16 against float32."""
    exact, half = stored(embeddings, "float32"), stored(embeddings, "float16")
    a, b = top(exact, exact, k), top(exact, half, k)
    identical = float(np.mean(np.all(a == b, axis=1)))
    overlap = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist())]))
    change = float(np.max(np.abs(exact @ exact.T - exact @ half.T)))
    return identical, overlap, change


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.float16", description=__doc__.splitlines()[0])
    add_descriptor_arguments(parser)
    options = descriptor_options(parser.parse_args(argv))
    missing = [str(folder) for folder in (HOLIDAYS, ORIGINALS) if not folder.is_dir()]
    if missing:
        print(f"error: data set not found: {', '.join(missing)} (see ../shared/datasets/README.md)", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="lookalike-float16-") as work:
            rows = measure(Path(work), options)
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("| stored as | holidays mAP | near-dup top-1 | near-dup top-10 | identical top-24 lists | top-24 overlap | largest score change |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def measure(work: Path, options: BuildOptions) -> list[tuple[str, ...]]:
    build_index(HOLIDAYS, work / "holidays.pkl", options)
    index = read_index(work / "holidays.pkl")
    ids = np.array([int(Path(p["path"]).stem) for p in index.photos])
    queries = np.flatnonzero(ids % 100 == 0)
    near = work / "near-duplicates"
    (near / "originals").mkdir(parents=True)
    for original in sorted(p for p in ORIGINALS.iterdir() if p.is_file()):
        (near / "originals" / original.name).symlink_to(original)
    made = make_copies(sorted((near / "originals").iterdir()), near / "copies", COPIES, 0)
    build_index(near, work / "near.pkl", options)
    near_index = read_index(work / "near.pkl")
    row_of = {p["path"]: r for r, p in enumerate(near_index.photos)}
    copy_rows = np.array([row_of[f"copies/{name}"] for name in made])
    original_rows = np.array([row_of[f"originals/{original}"] for original, _ in made.values()])
    expansion = index.model.query_expansion
    rows = []
    for dtype in ("float32", "float16"):
        holidays_map = mean_average_precision(expanded_descriptors(stored(index.embeddings, dtype), expansion), ids // 100, queries)
        ranked_by = expanded_descriptors(stored(near_index.embeddings, dtype), expansion)
        top1, top10 = recall_of_originals(ranked_by, copy_rows, original_rows, k=10)
        identical, overlap, change = agreement(index.embeddings) if dtype == "float16" else (1.0, 1.0, 0.0)
        rows.append((dtype, f"{holidays_map:.4f}", f"{top1:.3f}", f"{top10:.3f}", f"{identical:.1%}", f"{overlap:.2%}", f"{change:.1e}"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
