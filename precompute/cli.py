"""`python -m precompute PHOTOS --out INDEX`: build the index, with progress and a summary."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from precompute.build import BuildError, BuildOptions, BuildReport, build_index
from precompute.models import MODEL_NAMES, POOLINGS, LoadedModel, ModelUnavailable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_SOME_SKIPPED = 3  # the index was written, but some photos could not be read


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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
    parser.add_argument("--pooling", choices=POOLINGS, default="avg", help="global pooling of the last feature map (default: %(default)s)")
    parser.add_argument("--scales", type=_scales, default=(), help="input sizes to embed at and combine, e.g. 224,320 (default: the model's own)")
    parser.add_argument("--query-expansion", type=_non_negative, default=0, metavar="N",
                        help="mix each descriptor with its N nearest neighbours (αQE); 0 is off (default)")
    parser.add_argument("--batch-size", type=_positive, default=32, help="photos per inference batch (default: %(default)s)")
    parser.add_argument("--workers", type=_non_negative, help="decoding processes (default: one per core, up to 4)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run the model (default: %(default)s)")


def descriptor_options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
        model=args.model,
        weights=args.weights,
        pooling=args.pooling,
        scales=args.scales,
        query_expansion=args.query_expansion,
        batch_size=args.batch_size,
        workers=args.workers,
        device=args.device,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m precompute",
        description="Embed every photo in a folder and write the similar-photos index the web app serves.",
        epilog=f"Exit status: {EXIT_OK} all photos indexed, {EXIT_SOME_SKIPPED} index written but some photos "
        f"skipped, {EXIT_ERROR} no index written, 2 bad usage.",
    )
    parser.add_argument("photos", type=Path, help="folder of photos, searched recursively")
    parser.add_argument("--out", type=Path, default=Path("data/index.pkl"), help="index file to write (default: %(default)s)")
    parser.add_argument("--k", type=_positive, default=10, help="similar photos kept per photo (default: %(default)s)")
    add_descriptor_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = replace(descriptor_options(args), k=args.k)
    bar: tqdm | None = None

    def on_start(total: int, model: LoadedModel) -> None:
        nonlocal bar
        if model.note:
            print(model.note, file=sys.stderr)
        bar = tqdm(total=total, unit="photo", desc=f"Embedding with {model.name}", file=sys.stderr)

    try:
        report = build_index(args.photos, args.out, options, on_start=on_start, on_progress=lambda n: bar.update(n))
    except (BuildError, ModelUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted: the previous index, if any, is unchanged", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    print_summary(report)
    return EXIT_SOME_SKIPPED if report.skipped else EXIT_OK


def print_summary(report: BuildReport) -> None:
    print(f"Indexed {report.indexed} photos in {report.seconds:.1f} s with {report.model.name} ({report.model.weights}).")
    if report.skipped:
        print(f"Skipped {len(report.skipped)}:")
        for skipped in report.skipped:
            print(f"  {skipped.relpath}: {skipped.reason}")
    if report.ignored:
        print(f"Ignored {report.ignored} files that are not images.")
    print(f"Index: {report.index_path}")
    print(f"Thumbnails: {report.thumbnail_dir}")
