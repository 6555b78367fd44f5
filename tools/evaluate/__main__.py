"""`python -m tools.evaluate`: is a descriptor configuration better than the cheapest one, on photos it was not chosen on?

Builds real indexes with each configuration and with the baseline (average
pooling at the model's own input size, no query expansion, no flip), in one
run, and prints one table: holidays-dev mAP on each fixed half of the scenes
(`tune`, `confirm`; see `tools.evaluate.protocol`) with the paired
bootstrap interval of the difference against the baseline, near-duplicate
recall, category-level mAP@10 on imagenet-samples, and the time of each build
against the baseline's. Under it, for each configuration, how much of the
exact lists its index's neighbour lists hold (what `--neighbours approx`
costs; 1.000 for exact) and whether each edited copy lists its original. Then
the protocol's verdict: the configuration chosen on the tune half, and
whether the confirm half bears it out.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.index_file import Index, ModelInfo, read_index
from precompute.build import BuildError, BuildOptions, build_index
from precompute.cli import add_descriptor_arguments, descriptor_options
from precompute.evidence import EvidenceFile, evidence_path_for, read_evidence
from precompute.models import ModelUnavailable, load_model
from tools.evaluate.categories import read_table
from tools.evaluate.measures import category_scores, holidays_scores, list_recall, listed_originals, near_duplicate_recall
from tools.evaluate.near_duplicates import prepare_near_duplicates
from tools.evaluate.protocol import HALVES, PairedDifference, paired_bootstrap

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass
class Measured:
    """One configuration's per-query scores, so that differences can be paired."""

    label: str
    holidays: dict[str, np.ndarray]  # half -> AP of each of its queries, in a fixed order
    category: np.ndarray  # AP@10 of each imagenet-samples photo with a category
    top1: float
    top10: float
    seconds: float  # wall time of the near-duplicate build: decode, thumbnails, embedding, neighbours
    cpu_seconds: float  # CPU time of that build, this process and its decoding workers together
    photos: int
    lists: ListsAgainstExact

    def as_json(self) -> dict:
        return {"label": self.label, "holidays": {h: a.tolist() for h, a in self.holidays.items()},
                "category": self.category.tolist(), "top1": self.top1, "top10": self.top10,
                "seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "photos": self.photos,
                "lists": asdict(self.lists)}


@dataclass
class ListsAgainstExact:
    """What the indexes' own neighbour lists hold, as a visitor sees them: recall@k against exact lists per set."""

    method: str  # the search the index recorded: exact or approx
    holidays: float
    originals: float
    edits: float
    listed_top1: float  # the copy's first listed photo is its original
    listed_top10: float  # its original is among the listed

    def line(self, label: str, originals_name: str) -> str:
        return (f"Neighbour lists of {label} ({self.method}): recall@10 against exact lists: holidays-dev "
                f"{self.holidays:.3f}, {originals_name} {self.originals:.3f}, near-duplicate edits {self.edits:.3f}; "
                f"the original listed first for {self.listed_top1:.3f} of the edits, among the listed for {self.listed_top10:.3f}.")


def lists_against_exact(holidays_index: Index, index: Index, made: dict) -> ListsAgainstExact:
    recall = list_recall(index)
    copy_rows = np.array([r for r, p in enumerate(index.photos) if p["path"].startswith("copies/")])
    is_copy = np.zeros(len(recall), bool)
    is_copy[copy_rows] = True
    return ListsAgainstExact(index.model.neighbours, float(list_recall(holidays_index).mean()),
                             float(recall[~is_copy].mean()), float(recall[is_copy].mean()), *listed_originals(index, made))


def measure(options: BuildOptions, holidays: Path, near_duplicates: Path, made: dict, work: Path) -> Measured:
    work.mkdir()
    holidays_index = read_index(_build(holidays, work / "holidays.pkl", options))  # also exports the ONNX graph
    started, cpu_started = time.monotonic(), cpu_time()
    index = read_index(_build(near_duplicates, work / "near-duplicates.pkl", options))
    seconds, cpu = time.monotonic() - started, cpu_time() - cpu_started
    holidays_evidence = _evidence(work / "holidays.pkl", holidays_index)
    evidence = _evidence(work / "near-duplicates.pkl", index)
    top1, top10 = near_duplicate_recall(index, made, evidence)
    return Measured(describe(index.model), holidays_scores(holidays_index, holidays_evidence),
                    category_scores(index, read_table(), evidence),
                    top1, top10, seconds, cpu, len(index.photos), lists_against_exact(holidays_index, index, made))


def cpu_time() -> float:
    """CPU time used so far by this process and its finished children (the build's decoding workers).

    On shared cores wall time says more about the neighbours' load than about
    the configuration; CPU time is what a build costs.
    """
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _evidence(index_path: Path, index: Index) -> EvidenceFile | None:
    """The index's side file, where the build re-ranked (what it recorded: `auto` may have chosen `off`)."""
    return read_evidence(evidence_path_for(index_path)) if index.model.rerank != "off" else None


def _build(folder: Path, out: Path, options: BuildOptions) -> Path:
    build_index(folder, out, options)
    return out


def describe(model: ModelInfo) -> str:
    """A short name for a configuration, from what the index recorded."""
    parts = [model.name, f"{model.pooling} pooling", "scales " + "+".join(map(str, model.scales))]
    if model.flip:
        parts.append("flip")
    if model.query_expansion:
        parts.append(f"αQE n={model.query_expansion}")
    if model.rerank != "off":
        parts.append(f"re-ranked: {model.rerank}")
    return ", ".join(parts)


def baseline_of(options: BuildOptions) -> BuildOptions:
    """The cheapest descriptor of the same model: average pooling at its own size, nothing added, no re-ranking."""
    return replace(options, pooling="avg", scales=(), query_expansion=0, flip=False, rerank="off")


def descriptor_key(options: BuildOptions) -> str:
    """What the index would record about the descriptor: equal keys, equal embeddings (e.g. scales () and 224)."""
    model = load_model(options.model, options.weights, options.pooling, options.scales, options.flip)
    return json.dumps(model.describe() | {"query_expansion": options.query_expansion, "rerank": options.rerank}, sort_keys=True)


def report(baseline: Measured, candidates: list[Measured], originals_name: str = "imagenet-samples") -> list[str]:
    """The table, each configuration's lists against exact, and the protocol's verdict, as Markdown lines."""
    lines = ["| configuration | CPU time × baseline | tune mAP | tune Δ [95 % CI] | confirm mAP | confirm Δ [95 % CI] "
             "| near-dup top-1 / top-10 | category mAP@10 | category Δ [95 % CI] |",
             "|---|---|---|---|---|---|---|---|---|"]
    for measured in [baseline, *candidates]:
        cells = [measured.label + (" (the baseline)" if measured is baseline else ""),
                 f"{measured.cpu_seconds / baseline.cpu_seconds:.2f} ({1000 * measured.cpu_seconds / measured.photos:.0f} ms "
                 f"a photo; {measured.photos / measured.seconds:.1f} photos/s)"]
        for half in HALVES:
            cells.append(f"{measured.holidays[half].mean():.3f}")
            cells.append("" if measured is baseline else str(difference(measured, baseline, half)))
        cells.append(f"{measured.top1:.3f} / {measured.top10:.3f}")
        cells.append(f"{measured.category.mean():.3f}")
        cells.append("" if measured is baseline else str(paired_bootstrap(measured.category, baseline.category)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [measured.lists.line(measured.label, originals_name) for measured in [baseline, *candidates]]
    return lines + ["", verdict(baseline, candidates)]


def difference(candidate: Measured, baseline: Measured, half: str) -> PairedDifference:
    return paired_bootstrap(candidate.holidays[half], baseline.holidays[half])


def keeps_near_duplicates(candidate: Measured, baseline: Measured) -> bool:
    return candidate.top1 >= baseline.top1 and candidate.top10 >= baseline.top10


def verdict(baseline: Measured, candidates: list[Measured]) -> str:
    """Choose on the tune half (largest gain whose interval is above zero, recall kept), then confirm."""
    eligible = [c for c in candidates if difference(c, baseline, "tune").above_zero and keeps_near_duplicates(c, baseline)]
    if not eligible:
        return ("Verdict: no configuration beats the baseline on the tune half with its near-duplicate recall kept; "
                "the baseline stays the default.")
    chosen = max(eligible, key=lambda c: difference(c, baseline, "tune").mean)
    confirm = difference(chosen, baseline, "confirm")
    cost = f"{chosen.cpu_seconds / baseline.cpu_seconds:.2f}× the baseline's CPU time"
    if confirm.above_zero:
        return f"Verdict: chosen on the tune half: {chosen.label}; confirmed, {confirm} on the confirm half, at {cost}: adopt."
    return (f"Verdict: chosen on the tune half: {chosen.label} ({difference(chosen, baseline, 'tune')}); "
            f"not confirmed, {confirm} on the confirm half (at {cost}): the baseline stays the default.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.splitlines()[0])
    add_descriptor_arguments(parser)
    parser.add_argument("--also", action="append", default=[], metavar="OPTIONS",
                        help="another configuration to evaluate in the same run, as descriptor options that change "
                        "the main ones, e.g. --also='--pooling gem --scales 288' (with the =); repeatable")
    parser.add_argument("--holidays", type=Path, default=DATASETS / "holidays-dev", help="holidays-dev folder")
    parser.add_argument("--originals", type=Path, default=DATASETS / "imagenet-samples",
                        help="imagenet-samples: photos to make near-duplicates of, and the category-level set")
    parser.add_argument("--copies", type=int, default=200, help="edited copies to make (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the edits (default: %(default)s)")
    parser.add_argument("--record", type=Path, help="append the table and verdict to this Markdown file (e.g. docs/quality.md)")
    parser.add_argument("--scores", type=Path, help="write every configuration's per-query scores to this JSON file")
    args = parser.parse_args(argv)
    args.configurations = [descriptor_options(args)]
    for extra in args.also:
        variant = argparse.ArgumentParser(prog="--also", exit_on_error=False)
        add_descriptor_arguments(variant)
        variant.set_defaults(**{k: v for k, v in vars(args).items() if k in vars(variant.parse_args([]))})
        try:
            args.configurations.append(descriptor_options(variant.parse_args(shlex.split(extra))))
        except (argparse.ArgumentError, ValueError) as err:
            parser.error(f"--also {extra!r}: {err}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for folder in (args.holidays, args.originals):
        if not folder.is_dir():
            print(f"error: data set not found: {folder} (see ../shared/datasets/README.md)", file=sys.stderr)
            return 1
    try:
        baseline_options = baseline_of(args.configurations[0])
        unique = {descriptor_key(options): options for options in args.configurations}
        unique.pop(descriptor_key(baseline_options), None)  # always measured, once
        with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as folder:
            work = Path(folder)
            photos, made = prepare_near_duplicates(args.originals, work, args.copies, args.seed)
            measured = []
            for number, options in enumerate([baseline_options, *unique.values()]):
                measured.append(measure(options, args.holidays, photos, made, work / f"configuration-{number}"))
                print(f"measured {measured[-1].label}", file=sys.stderr, flush=True)
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    lines = report(measured[0], measured[1:], args.originals.name)
    print("\n".join(lines))
    if args.scores:
        args.scores.write_text(json.dumps([m.as_json() for m in measured]), encoding="utf-8")
    if args.record:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with args.record.open("a", encoding="utf-8") as out:
            out.write(f"\nMeasured {when}:\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
