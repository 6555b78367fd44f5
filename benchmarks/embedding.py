"""Embedding throughput: the real pipeline (`precompute.embed.embed_photos`) against its baselines.

* Ordinary photos (imagenet-samples): the pipeline, decoding and writing
  thumbnails in worker processes, against the same runner fed pre-decoded crops
  with the same batch size. Goal: at least 85% of model-only. Measured with the
  default descriptor (efficientnet-lite0, average pooling at its own 224 px, the
  cheapest) and with resnet18.
* 12-megapixel JPEGs, made here from those photos: the pipeline against the
  one-at-a-time script Lookalike grew from (full decode, torchvision's
  transforms, batch 1, eager PyTorch, autograd on), with the same model.
  Goal: at least 5x.
* Where the time per 12 MP photo goes, and what the 960 px preview costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms
from torchvision.models import resnet18

from benchmarks.measure import Row, Usage, best_of_interleaved
from core.index_file import THUMBNAIL_SIZES as SIZES
from precompute.build import BuildOptions
from precompute.decoders import decode_photo
from precompute.embed import embed_photos
from precompute.models import LoadedModel, load_model, load_resnet18
from precompute.prepare import prepare_photo
from precompute.preprocess import Preprocessing
from precompute.resize import model_crop
from precompute.runtime import TorchRunner, make_runner
from precompute.scan import PhotoFile, scan_photos
from precompute.thumbnails import write_thumbnails
from tests.support.datasets import IMAGENET_SAMPLES as IMAGENET

LARGE_SIZE = (4000, 3000)
DEFAULT_LABEL = "efficientnet-lite0, 224 px: the default"
CPU = torch.device("cpu")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedding")
    # Several batches each: with a single batch, decoding cannot overlap inference at all,
    # and the figure would measure how long the pipeline takes to fill, not how fast it runs.
    group.add_argument("--photos", type=int, default=512, help="ordinary photos from imagenet-samples (default: %(default)s)")
    group.add_argument("--large", type=int, default=128, help="12 MP JPEGs to generate (default: %(default)s)")
    group.add_argument("--imagenet", type=Path, default=IMAGENET, help="folder of ordinary photos (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=32, help="pipeline and model-only batch size (default: %(default)s)")
    group.add_argument("--workers", type=int, default=None, help="pipeline decoding workers (default: the pipeline's)")


def run(args: argparse.Namespace) -> Iterator[Row]:
    if not args.imagenet.is_dir():
        raise SystemExit(f"embedding benchmark: photo folder not found: {args.imagenet}")
    photos = scan_photos(args.imagenet).photos
    defaults = BuildOptions()
    default = load_model("efficientnet-lite0", None, defaults.pooling, defaults.scales, defaults.flip)
    ordinary = photos[: args.photos]
    yield from _ordinary_rows(DEFAULT_LABEL, default, ordinary, args)
    yield from _ordinary_rows("resnet18, random weights", _random_resnet18(), ordinary, args)
    with tempfile.TemporaryDirectory(prefix="lookalike-12mp-") as folder:
        large = make_large_jpegs(photos[: args.large], Path(folder))
        yield from _large_rows(DEFAULT_LABEL, default, large, args)
        yield from _preview_cost_rows(default, large, args.rounds)


def _random_resnet18() -> LoadedModel:
    """ResNet18 with randomly initialised weights: a speed figure only, never a quality one."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "random-resnet18.pt")
        torch.manual_seed(0)
        torch.save(resnet18(weights=None).state_dict(), path)
        return load_resnet18(path)


def _pipeline(photos: list[PhotoFile], model: LoadedModel, runner, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="lookalike-thumbs-") as folder:
        embed_photos(photos, model, Path(folder), batch_size=args.batch_size, workers=args.workers, device=CPU, runner=runner)


def _batches_per_scale(photos: list[PhotoFile], model: LoadedModel, batch_size: int) -> list[list[np.ndarray]]:
    """The pipeline's own uint8 crops, decoded beforehand: for each batch, one array per input scale."""
    with tempfile.TemporaryDirectory() as folder:
        crops = [prepare_photo(i, photo, model.input_specs, Path(folder)).pixels for i, photo in enumerate(photos)]
    return [[np.stack(scale) for scale in zip(*crops[i : i + batch_size])] for i in range(0, len(crops), batch_size)]


def _rate_rows(figure: str, ours: Usage, baseline: Usage, count: int, goal: str, note: str = "") -> Iterator[Row]:
    yield Row(figure, count / ours.seconds, count / baseline.seconds, "photos/s", goal, note=note)
    yield Row(f"{figure}: CPU utilisation", 100 * ours.cpu_utilisation, 100 * baseline.cpu_utilisation, "%", note=note)


def _ordinary_rows(label: str, model: LoadedModel, photos: list[PhotoFile], args: argparse.Namespace) -> Iterator[Row]:
    runner = make_runner(model, CPU)
    batches = _batches_per_scale(photos, model, args.batch_size)
    eager = TorchRunner(model, CPU)
    best = best_of_interleaved(
        args.rounds,
        pipeline=lambda: _pipeline(photos, model, runner, args),
        model_only=lambda: [runner(scale) for batch in batches for scale in batch],
        eager=lambda: [eager(scale) for batch in batches for scale in batch],
    )
    note = f"{label}, {len(photos)} ordinary photos, batch {args.batch_size}"
    yield from _rate_rows(
        "pipeline vs model-only", best["pipeline"], best["model_only"], len(photos), "ratio ≥ 0.85", note
    )
    # Both sides keep both cores busy, so what the pipeline adds per photo is CPU time, not waiting.
    yield Row("CPU ms per photo, pipeline vs model-only", 1000 * best["pipeline"].cpu_seconds / len(photos),
              1000 * best["model_only"].cpu_seconds / len(photos), "ms", higher_is_better=False, note=note)
    yield Row(
        f"model-only: {runner.name} vs eager PyTorch",
        len(photos) / best["model_only"].seconds,
        len(photos) / best["eager"].seconds,
        "photos/s",
        note=label,
    )


def make_large_jpegs(photos: list[PhotoFile], folder: Path) -> list[PhotoFile]:
    """Upscale each photo to about 12 MP and save it at JPEG quality 90, as a camera would."""
    made = []
    for photo in photos:
        with Image.open(photo.path) as image:
            large = image.convert("RGB").resize(LARGE_SIZE, Image.Resampling.BICUBIC)
        path = folder / (photo.path.stem + ".jpg")
        large.save(path, "JPEG", quality=90)
        made.append(PhotoFile(path, path.name, path.stat().st_size, path.stat().st_mtime_ns))
    return made


def one_at_a_time(photos: list[PhotoFile], model: LoadedModel) -> np.ndarray:
    """The notebook Lookalike grew from: full decode, torchvision's transforms, one photo per forward pass, autograd on."""
    pipelines = [_torchvision_transform(spec) for spec in model.input_specs]
    rows = []
    for photo in photos:
        image = ImageOps.exif_transpose(Image.open(photo.path)).convert("RGB")
        total = 0
        for transform in pipelines:  # one pass per input size, as the pipeline does
            total = total + torch.nn.functional.normalize(model.features(transform(image).unsqueeze(0)), dim=1)
        rows.append(torch.nn.functional.normalize(total, dim=1).detach().numpy())
    return np.concatenate(rows)


def _torchvision_transform(spec: Preprocessing) -> transforms.Compose:
    """The usual way to write `spec`: Pillow resizes, then crop, scale and normalise."""
    return transforms.Compose([
        transforms.Resize(spec.resize, interpolation=transforms.InterpolationMode(spec.interpolation)),
        transforms.CenterCrop(spec.crop),
        transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])


def _large_rows(label: str, model: LoadedModel, photos: list[PhotoFile], args: argparse.Namespace) -> Iterator[Row]:
    runner = make_runner(model, CPU)
    best = best_of_interleaved(
        args.rounds,
        pipeline=lambda: _pipeline(photos, model, runner, args),
        one_at_a_time=lambda: one_at_a_time(photos, model),
    )
    note = f"{label}, {len(photos)} JPEGs of {LARGE_SIZE[0]}×{LARGE_SIZE[1]}"
    yield from _rate_rows("12 MP: pipeline vs one-at-a-time", best["pipeline"], best["one_at_a_time"], len(photos), "ratio ≥ 5", note)


def _preview_cost_rows(model: LoadedModel, photos: list[PhotoFile], rounds: int) -> Iterator[Row]:
    """Per-photo cost of preparing a 12 MP JPEG in one process, with and without the 960 px preview."""
    spec = model.preprocessing
    datas = [photo.path.read_bytes() for photo in photos]
    preview, thumb = max(SIZES.values()), min(SIZES.values())

    with tempfile.TemporaryDirectory() as folder:
        def prepare(min_longer: int, thumbnails: bool) -> None:
            for data in datas:
                pixels = np.asarray(decode_photo(data, spec.resize, min_longer).image)
                model_crop(pixels, spec)
                if thumbnails:  # a fresh name each time, so every thumbnail is really encoded and written
                    write_thumbnails(pixels, Path(folder), f"{time.perf_counter_ns():040x}")

        def decode(min_longer: int) -> None:
            for data in datas:
                decode_photo(data, spec.resize, min_longer)

        best = best_of_interleaved(
            rounds,
            with_preview=lambda: prepare(preview, True),
            thumb_only=lambda: prepare(thumb, True),
            no_thumbnails=lambda: prepare(thumb, False),
            decode_for_preview=lambda: decode(preview),
            decode_for_thumb=lambda: decode(thumb),
        )
    ms = {name: 1000 * usage.seconds / len(datas) for name, usage in best.items()}
    note = f"{len(datas)} JPEGs of 12 MP, one process"
    yield Row("prepare ms/photo: as now (960 preview) vs 320 thumb only", ms["with_preview"], ms["thumb_only"], "ms",
              higher_is_better=False, note=note)
    yield Row("prepare ms/photo: as now vs no thumbnails at all", ms["with_preview"], ms["no_thumbnails"], "ms",
              higher_is_better=False, note=note)
    yield Row("decode ms/photo: draft to 960 px (1/4) vs to the model's 256 px (1/8)", ms["decode_for_preview"],
              ms["decode_for_thumb"], "ms", higher_is_better=False, note=note)
