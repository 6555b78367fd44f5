"""`python -m tools.evaluate.duplicate_threshold`: which photos should join into duplicate groups?

Builds one collection of photos and seeded edited copies of some of them, one
edit each, the twelve kinds in turn (`DUPLICATE_KINDS`: resize 50 % and 25 %,
JPEG quality 15, crop 80 % centred and 60 % off centre, grayscale, mirror, 90°
pixel rotation, brightness and contrast, caption band, PNG re-save, letterbox
padding): copies of imagenet-samples photos (one photo per class: nothing
alike but the copy) and copies of holidays-dev photos, whose scene has other
shots (alike, but not copies: the hard distractors a personal collection
has). It is indexed with the default descriptor and k, grouped exactly as
`/duplicates` groups (`core.duplicate_groups`): similar shots at each
candidate threshold, and same-picture groups where the index has the evidence.
Groups are measured by pairs: a pair of photos in one group is right if
they are one picture (one an edited copy of the other, or both of one
original). Precision is the share of grouped pairs that are right, recall
the share of such pairs that share a group. Two shots of one holidays scene
in a group count as wrong, however alike.

The photos are split in two fixed halves: an imagenet-samples original by the
parity of its WordNet id (even: tune, odd: confirm), a holidays-dev photo by
its scene as `tools.evaluate.protocol` splits them, a copy with its
original, so each half holds every kind of edit. Every threshold is chosen on
the tune half: the similar-shots threshold as the highest F1 (ties: the
higher threshold, which groups less), the same-picture thresholds as the
highest tune recall at tune precision ≥ 0.98 (`precise_first`). Their
precision and recall on the confirm half are what docs/quality.md states,
per edit too. The copies are made in a temporary
folder (or `--work`, kept for the next run), never in the repository.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.duplicate_groups import MIN_THRESHOLD, DuplicateGroups, find_groups, same_picture_groups
from core.index_file import read_index
from precompute.build import BuildError, BuildOptions, build_index
from precompute.cli import add_descriptor_arguments, descriptor_options
from precompute import verification
from precompute.evidence import evidence_path_for, read_evidence
from precompute.models import ModelUnavailable
from precompute.same_picture import CHECK, candidate_pairs
from tools.evaluate.near_duplicates import DUPLICATE_KINDS, make_copies
from tools.evaluate.protocol import HALVES, half_of_scene

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CANDIDATES = np.round(np.arange(MIN_THRESHOLD, 1.0, 0.01), 2)
# The same-picture decision's thresholds tried on the tune half: (min inliers, max inlier error in px, max disagreement).
# Min inliers is held at 12, not chosen: tune holds no pair that 8 inliers join wrongly, so it always chose 8, and on
# the confirm half 8 let a quarter-size copy chain its original to another shot of the scene (docs/quality.md).
SAME_GRID = list(itertools.product((12,), (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5), (0.02, 0.035, 0.05, 0.08, 0.12)))
SAME_PRECISION = 0.98  # the same-picture groups' precision goal (issue #21), which their thresholds must meet on tune
# The collection's folders: each set of originals (linked, never copied) and the folder of its edited copies.
SOURCES = {"originals": "copies", "holidays": "holiday-copies"}
Made = dict[str, tuple[str, str]]  # copy path in the collection -> (original path in it, edit kind)


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

    def __str__(self) -> str:
        return f"precision {self.precision:.3f} ({self.right}/{self.grouped}), recall {self.recall:.3f} ({self.right}/{self.true})"


def half_of_original(name: str) -> str:
    """The fixed split: an original whose WordNet id (`n01440764_tench.JPEG`) is even is in tune, odd in confirm."""
    return HALVES[int(name.split("_")[0].lstrip("n")) % 2]


def half_of_photo(path: str) -> str:
    """A photo's half: a holidays photo by its scene, an imagenet-samples one by its WordNet id."""
    folder, _, name = path.partition("/")
    return half_of_scene(int(Path(name).stem) // 100) if folder == "holidays" else half_of_original(name)


def prepare_collection(work: Path, originals: Path, holidays: Path, copies: int, holiday_copies: int, seed: int) -> tuple[Path, Made]:
    """The collection under `work/photos` and its map of copies.

    The copies are written again on every run; being seeded, they come out
    byte for byte the same, so a kept `--work` index reuses their embeddings.
    """
    photos = work / "photos"
    made: Made = {}
    for (folder, copy_folder), source, count in zip(SOURCES.items(), (originals, holidays), (copies, holiday_copies)):
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        (photos / folder).mkdir(parents=True, exist_ok=True)
        for file in files:
            if not (photos / folder / file.name).is_symlink():
                (photos / folder / file.name).symlink_to(file.resolve())
        for name, (original, kind) in make_copies(files, photos / copy_folder, count, seed, DUPLICATE_KINDS).items():
            made[f"{copy_folder}/{name}"] = (f"{folder}/{original}", kind)
    return photos, made


def photo_halves(index: dict, made: Made) -> tuple[np.ndarray, np.ndarray]:
    """(each row's half, each row's original row: itself for an original, its original's for a copy).

    A photo whose bytes equal an earlier photo's is a copy of that one: holidays-dev holds two such files under
    different scenes (103101 and 103901, 103102 and 103902), one picture however the data set files it; an edited
    copy of either is a copy of both.
    """
    paths = [photo["path"] for photo in index.photos]
    row_of = {path: row for row, path in enumerate(paths)}
    first_with = {}
    source = np.arange(len(paths))
    halves = []
    for row, path in enumerate(paths):
        original = made[path][0] if path in made else path
        source[row] = row_of[original]
        halves.append(half_of_photo(original))
    for row, content in enumerate(bytes(h) for h in index.photos.columns["sha1"]):
        if source[row] == row:
            source[row] = first_with.setdefault(content, row)
    return np.array(halves), source[source]  # a copy of the second of two identical files: a copy of the first


def pair_counts(groups: DuplicateGroups, halves: np.ndarray, source: np.ndarray) -> dict[str, PairCounts]:
    """Grouped, right and true pairs per half: a pair is right, and true, when its two photos have one source."""
    counts = {}
    for half in HALVES:
        grouped = right = 0
        for number in range(len(groups)):
            rows = groups.group(number)
            rows = rows[halves[rows] == half]
            grouped += len(rows) * (len(rows) - 1) // 2
            right += _pairs_within(source[rows])
        counts[half] = PairCounts(grouped, right, _pairs_within(source[halves == half]))
    return counts


def _pairs_within(sources: np.ndarray) -> int:
    """Pairs of photos with one source among these (a copy and its original; two identical files and a copy)."""
    sizes = np.unique(sources, return_counts=True)[1]
    return int((sizes * (sizes - 1) // 2).sum())


def largest_group(groups: DuplicateGroups) -> int:
    return int(np.diff(groups.starts).max(initial=0))


def chosen(table: dict, strictness: Callable = lambda threshold: threshold):
    """The threshold with the highest tune-half F1; ties go to the strictest (the higher similarity threshold,
    which groups less)."""
    return max(table, key=lambda t: (round(table[t]["tune"].f1, 6), strictness(t)))


def _same_strictness(thresholds: tuple) -> tuple:
    """More inliers, less error and less disagreement are stricter."""
    min_inliers, max_error, max_disagreement = thresholds
    return (-max_error, -max_disagreement, min_inliers)


def precise_first(table: dict) -> tuple:
    """Same picture: the highest tune recall at tune precision ≥ SAME_PRECISION (a move must not take another shot
    away); ties to the strictest. Without one, the highest tune F1."""
    precise = {t: counts for t, counts in table.items() if counts["tune"].precision >= SAME_PRECISION}
    if not precise:
        return chosen(table, _same_strictness)
    return max(precise, key=lambda t: (precise[t]["tune"].recall, _same_strictness(t)))


def recall_by_edit(groups: DuplicateGroups, paths: list[str], made: Made, halves: np.ndarray,
                   source: np.ndarray) -> dict[str, dict[str, tuple[int, int]]]:
    """{edit kind: {half: (copies sharing a group with their original, copies)}}."""
    group_of = np.full(len(source), -1)
    for number in range(len(groups)):
        group_of[groups.group(number)] = number
    found: dict[str, dict[str, tuple[int, int]]] = {kind: {half: (0, 0) for half in HALVES} for kind in DUPLICATE_KINDS}
    for row, path in enumerate(paths):
        if path in made:
            kind, half = made[path][1], halves[row]
            hit = group_of[row] >= 0 and group_of[row] == group_of[source[row]]
            done, total = found[kind][half]
            found[kind][half] = (done + int(hit), total + 1)
    return found


def per_edit_table(found: dict[str, dict[str, tuple[int, int]]]) -> list[str]:
    lines = ["| edit | tune | confirm |", "|---|---|---|"]
    for kind, halves in found.items():
        lines.append(f"| {kind} | " + " | ".join(f"{done}/{total}" for done, total in halves.values()) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.duplicate_threshold", description=__doc__.splitlines()[0])
    add_descriptor_arguments(parser)
    parser.add_argument("--originals", type=Path, default=DATASETS / "imagenet-samples", help="photos to make copies of")
    parser.add_argument("--holidays", type=Path, default=DATASETS / "holidays-dev",
                        help="photos alike but not copies, some of them copied too")
    parser.add_argument("--copies", type=int, default=120, help="edited copies of --originals photos (default: %(default)s)")
    parser.add_argument("--holiday-copies", type=int, default=120, help="edited copies of --holidays photos (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the edits (default: %(default)s)")
    parser.add_argument("--k", type=int, default=BuildOptions.k, help="neighbours stored per photo (default: %(default)s)")
    parser.add_argument("--work", type=Path, help="keep the copies and the index in this folder and reuse them next time "
                        "(an incremental update); default: a temporary folder, removed")
    args = parser.parse_args(argv)
    for folder in (args.originals, args.holidays):
        if not folder.is_dir():
            print(f"error: data set not found: {folder} (see ../shared/datasets/README.md)", file=sys.stderr)
            return 1
    for folder, count in ((args.originals, args.copies), (args.holidays, args.holiday_copies)):
        if not 0 <= count <= sum(1 for p in folder.iterdir() if p.is_file()):
            print(f"error: cannot make {count} copies of the photos of {folder}: one copy a photo, at most", file=sys.stderr)
            return 1
    try:
        with (nullcontext(str(args.work)) if args.work else tempfile.TemporaryDirectory(prefix="lookalike-duplicates-")) as work:
            work = Path(work)
            photos, made = prepare_collection(work, args.originals, args.holidays, args.copies, args.holiday_copies, args.seed)
            build_index(photos, work / "index.pkl", replace(descriptor_options(args), k=args.k, rerank="local"))
            index = read_index(work / "index.pkl")
            # Inside the folder's lifetime: the evidence side file goes with a temporary one.
            sameness = pair_sameness(index, read_evidence(evidence_path_for(work / "index.pkl")),
                                     work / "sameness.pickle" if args.work else None)
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    paths = [photo["path"] for photo in index.photos]
    halves, source = photo_halves(index, made)
    print(f"{index.model.name}, {index.model.pooling} pooling, k={index.k}: "
          f"{len(paths)} photos, {len(made)} of them edited copies of others ({', '.join(DUPLICATE_KINDS)})")
    print("\n## Similar shots: the similarity threshold\n")
    similar = {float(t): find_groups(index.neighbours, index.scores, index.photos, float(t)) for t in CANDIDATES}
    best = report_thresholds({t: (pair_counts(g, halves, source), largest_group(g)) for t, g in similar.items()},
                             lambda t: f"{t:.2f}")
    print("\n".join(per_edit_table(recall_by_edit(similar[best], paths, made, halves, source))))
    print("\n## Same picture: verified pairs\n")
    report_same_picture(index, sameness, paths, made, halves, source)
    return 0


def pair_sameness(index: dict, evidence, cache: Path | None) -> tuple[np.ndarray, list]:
    """Every candidate pair of the index and its `verification.Sameness`; kept in `cache` by content, when given,
    as long as the evidence and the check are made the same way (`same_picture.CHECK`)."""
    pairs = candidate_pairs(index.neighbours)
    kept = pickle.loads(cache.read_bytes()) if cache and cache.exists() else {}
    known = kept.get("pairs", {}) if kept.get("check") == CHECK else {}
    found = []
    for a, b in pairs.tolist():
        key = (evidence.sha1(a), evidence.sha1(b))
        if key not in known:
            known[key] = verification.picture_sameness(evidence.features(a), evidence.gray(a), evidence.features(b),
                                                       evidence.gray(b), evidence.sscd(a), evidence.sscd(b))
        found.append(known[key])
    if cache:
        cache.write_bytes(pickle.dumps({"check": CHECK, "pairs": known}))
    return pairs, found


def report_same_picture(index: dict, counts: tuple, paths: list[str], made: Made, halves: np.ndarray, source: np.ndarray) -> None:
    """Groups of the pairs that pass each threshold of SAME_GRID, the tune half's choice, and the defaults' figures."""
    pairs, sameness = counts
    offered = set(map(tuple, pairs.tolist()))
    copies = np.flatnonzero(source != np.arange(len(source)))
    candidates = sum((min(row, source[row]), max(row, source[row])) in offered for row in copies.tolist())
    print(f"{len(pairs)} candidate pairs from the similar lists; {candidates} of the {len(copies)} (copy, original) pairs "
          "among them.")

    def groups(min_inliers: int, max_error: float, max_disagreement: float) -> DuplicateGroups:
        one = [pair for pair, same in zip(pairs.tolist(), sameness) if same.same(min_inliers, max_error, max_disagreement)]
        two = [pair for pair, same in zip(pairs.tolist(), sameness) if same.different(min_inliers, max_error)]
        one, two = (np.array(found, np.int64).reshape(-1, 2) for found in (one, two))
        return same_picture_groups(one, index.photos, two)

    table = {}
    for thresholds in SAME_GRID:
        grouped = groups(*thresholds)
        table[thresholds] = (pair_counts(grouped, halves, source), largest_group(grouped))
    best = report_thresholds(table, lambda t: f"inliers ≥ {t[0]}, error ≤ {t[1]}, disagreement ≤ {t[2]}",
                             shown=lambda t, best: (t[1] == best[1] and t[2] == best[2]) or t[0] == best[0] and (
                                 t[1] == best[1] or t[2] == best[2]), choose=precise_first)
    print("\n".join(per_edit_table(recall_by_edit(groups(*best), paths, made, halves, source))))
    defaults = (verification.SAME_MIN_INLIERS, verification.SAME_MAX_ERROR, verification.SAME_MAX_DISAGREEMENT)
    stored = table.get(defaults) or (pair_counts(groups(*defaults), halves, source), 0)
    print(f"\nThe pipeline's defaults {defaults}: tune {stored[0]['tune']}; confirm {stored[0]['confirm']}.")


def report_thresholds(table: dict, label: Callable, shown: Callable = lambda threshold, best: True,
                      choose: Callable = chosen):
    """Print a row per candidate that `shown(candidate, choice)` admits, and the tune half's choice; return it."""
    print("| threshold | tune precision | tune recall | tune F1 | confirm precision | confirm recall | confirm F1 | largest group |")
    print("|---|---|---|---|---|---|---|---|")
    best = choose({t: counts for t, (counts, _) in table.items()})
    for threshold, (counts, largest) in table.items():
        if not shown(threshold, best):
            continue
        cells = [label(threshold)]
        for half in HALVES:
            c = counts[half]
            cells += [f"{c.precision:.3f} ({c.right}/{c.grouped})", f"{c.recall:.3f} ({c.right}/{c.true})", f"{c.f1:.3f}"]
        cells.append(str(largest))
        print("| " + " | ".join(cells) + " |")
    tune, confirm = table[best][0]["tune"], table[best][0]["confirm"]
    print(f"\nChosen on the tune half: {label(best)} ({tune}, F1 {tune.f1:.3f}); on the confirm half: {confirm}, F1 {confirm.f1:.3f}.")
    print(f"At {label(best)}, copies grouped with their original, per edit and half:")
    return best


if __name__ == "__main__":
    sys.exit(main())
