"""`python -m tools.evaluate.duplicate_threshold`: which similarity should join photos into duplicate groups?

Builds one collection: the near-duplicate set of `python -m tools.evaluate`
(the imagenet-samples originals and 200 seeded edited copies) and, as hard
distractors, holidays-dev (several different shots of each scene, as a
personal collection has: alike, but not copies). It is indexed with the
default descriptor and k, grouped at each candidate threshold exactly as
`/duplicates` groups (`core.duplicate_groups`), and the groups are
measured by pairs: a pair of photos in one group is right if one is an edited
copy of the other. Precision is the share of grouped pairs that are right,
recall the share of (copy, original) pairs that share a group. Two shots of
one holidays scene in a group count as wrong, even the near-identical ones.

The photos are split in two fixed halves: an imagenet-samples original by the
parity of its WordNet id (even: tune, odd: confirm), its copy with it, so each
half holds every kind of edit; a holidays-dev photo by its scene, as
`tools.evaluate.protocol` splits them. The threshold is chosen on the
tune half, as the highest F1 (ties: the higher threshold, which groups less),
and its precision and recall on the confirm half are what docs/quality.md states.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.duplicate_groups import MIN_THRESHOLD, find_groups
from core.index_file import Index, read_index
from precompute.build import BuildError, BuildOptions, build_index
from precompute.cli import add_descriptor_arguments, descriptor_options
from precompute.models import ModelUnavailable
from tools.evaluate.near_duplicates import prepare_near_duplicates
from tools.evaluate.protocol import HALVES, half_of_scene

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CANDIDATES = np.round(np.arange(MIN_THRESHOLD, 1.0, 0.01), 2)


@dataclass(frozen=True)
class PairCounts:
    grouped: int  # pairs of photos of this half that share a group
    right: int  # of those, (copy, original) pairs
    true: int  # (copy, original) pairs of this half

    @property
    def precision(self) -> float:
        return self.right / self.grouped if self.grouped else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def half_of_original(name: str) -> str:
    """The fixed split: an original whose WordNet id (`n01440764_tench.JPEG`) is even is in tune, odd in confirm."""
    return HALVES[int(name.split("_")[0].lstrip("n")) % 2]


def photo_halves(index: Index, made: dict[str, tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(each row's half, each row's original row: itself for an original, its original's for a copy)."""
    paths = [photo["path"] for photo in index.photos]
    row_of = {path: row for row, path in enumerate(paths)}
    source = np.arange(len(paths))
    halves = []
    for row, path in enumerate(paths):
        folder, _, name = path.partition("/")
        if folder == "holidays":  # a distractor: no copies, split by scene
            halves.append(half_of_scene(int(Path(name).stem) // 100))
            continue
        original = made[name][0] if folder == "copies" else name
        source[row] = row_of[f"originals/{original}"]
        halves.append(half_of_original(original))
    return np.array(halves), source


def pair_counts(index: Index, threshold: float, halves: np.ndarray, source: np.ndarray) -> dict[str, PairCounts]:
    """Grouped, right and true pairs per half, for the groups at `threshold`."""
    groups = find_groups(index.neighbours, index.scores, index.photos, threshold)
    copies = np.flatnonzero(source != np.arange(len(source)))
    counts = {}
    for half in HALVES:
        grouped = right = 0
        for number in range(len(groups)):
            rows = groups.group(number)
            rows = rows[halves[rows] == half]
            grouped += len(rows) * (len(rows) - 1) // 2
            originals = source[rows]
            # right pairs: a copy and its own original both in this group (each copy has one original)
            right += int(np.count_nonzero(np.isin(originals[originals != rows], rows)))
        counts[half] = PairCounts(grouped, right, int(np.count_nonzero(halves[copies] == half)))
    return counts


def largest_group(index: Index, threshold: float) -> int:
    groups = find_groups(index.neighbours, index.scores, index.photos, threshold)
    return int(np.diff(groups.starts).max(initial=0))


def chosen(table: dict[float, dict[str, PairCounts]]) -> float:
    """The threshold with the highest tune-half F1; ties go to the higher threshold."""
    return max(table, key=lambda t: (round(table[t]["tune"].f1, 6), t))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.duplicate_threshold", description=__doc__.splitlines()[0])
    add_descriptor_arguments(parser)
    parser.add_argument("--originals", type=Path, default=DATASETS / "imagenet-samples", help="photos to make copies of")
    parser.add_argument("--holidays", type=Path, default=DATASETS / "holidays-dev", help="distractors: photos alike but not copies")
    parser.add_argument("--copies", type=int, default=200, help="edited copies to make (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the edits (default: %(default)s)")
    parser.add_argument("--k", type=int, default=BuildOptions.k, help="neighbours stored per photo (default: %(default)s)")
    args = parser.parse_args(argv)
    for folder in (args.originals, args.holidays):
        if not folder.is_dir():
            print(f"error: data set not found: {folder} (see ../shared/datasets/README.md)", file=sys.stderr)
            return 1
    try:
        with tempfile.TemporaryDirectory(prefix="lookalike-duplicates-") as work:
            photos, made = prepare_near_duplicates(args.originals, Path(work), args.copies, args.seed)
            (photos / "holidays").mkdir()
            for photo in sorted(args.holidays.glob("*.jpg")):
                (photos / "holidays" / photo.name).symlink_to(photo.resolve())
            build_index(photos, Path(work) / "index.pkl", replace(descriptor_options(args), k=args.k))
            index = read_index(Path(work) / "index.pkl")
            halves, source = photo_halves(index, made)
            table = {float(t): pair_counts(index, float(t), halves, source) for t in CANDIDATES}
            largest = {float(t): largest_group(index, float(t)) for t in CANDIDATES}
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{index.model.name}, {index.model.pooling} pooling, k={index.k}: "
          f"{len(index.photos)} photos, {len(made)} of them edited copies of others")
    print("| threshold | tune precision | tune recall | tune F1 | confirm precision | confirm recall | confirm F1 | largest group |")
    print("|---|---|---|---|---|---|---|---|")
    for threshold, counts in table.items():
        cells = [f"{threshold:.2f}"]
        for half in HALVES:
            c = counts[half]
            cells += [f"{c.precision:.3f} ({c.right}/{c.grouped})", f"{c.recall:.3f} ({c.right}/{c.true})", f"{c.f1:.3f}"]
        cells.append(str(largest[threshold]))
        print("| " + " | ".join(cells) + " |")
    best = chosen(table)
    confirm = table[best]["confirm"]
    print(f"\nChosen on the tune half: {best:.2f} (F1 {table[best]['tune'].f1:.3f}); on the confirm half: "
          f"precision {confirm.precision:.3f}, recall {confirm.recall:.3f}, F1 {confirm.f1:.3f}.")
    print(f"At {best:.2f}, copies grouped with their original, per edit (both halves): "
          + ", ".join(f"{kind} {found}/{total}" for kind, (found, total) in recall_by_edit(index, made, best, source).items()))
    return 0


def recall_by_edit(index: Index, made: dict[str, tuple[str, str]], threshold: float, source: np.ndarray) -> dict[str, tuple[int, int]]:
    """{edit kind: (copies sharing a group with their original, copies)} at `threshold`."""
    groups = find_groups(index.neighbours, index.scores, index.photos, threshold)
    group_of = np.full(len(source), -1)
    for number in range(len(groups)):
        group_of[groups.group(number)] = number
    found: dict[str, tuple[int, int]] = {}
    for row, photo in enumerate(index.photos):
        folder, _, name = photo["path"].partition("/")
        if folder == "copies":
            kind = made[name][1]
            hit = group_of[row] >= 0 and group_of[row] == group_of[source[row]]
            done, total = found.get(kind, (0, 0))
            found[kind] = (done + int(hit), total + 1)
    return found


if __name__ == "__main__":
    sys.exit(main())
