"""Decode rate of a 12-megapixel photo as HEIC, AVIF, JPEG XL and DNG against the same photo as a JPEG with `draft`.

Each format is decoded as indexing decodes it (`precompute.decode.decode_photo`
with the bounds of the default descriptor), in rounds interleaved with the
JPEG baseline, best round counting. The DNG is read twice: with a full-size
JPEG preview embedded, as cameras write them (the preview is decoded), and
without one (the sensor data is demosaiced at half size). The formats whose
decoders are isolated are also timed through the forked child indexing runs
them in (`precompute.isolation`), to show what that protection costs.

The photo is a holidays-dev photo enlarged to 4000 × 3000 with sensor-like
noise, so the encoders cannot compress it to nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.measure import Row
from precompute.decoders import decode_photo
from precompute.prepare import decode_for_model
from precompute.preprocess import Preprocessing
from tests.support.datasets import HOLIDAYS

SOURCE = HOLIDAYS / "100300.jpg"
SIZE = (4000, 3000)
MIN_SHORTER, MIN_LONGER = 256, 960  # efficientnet-lite0's resize and the preview's size: what indexing asks for
SPEC = Preprocessing(resize=MIN_SHORTER, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
DECODES_PER_ROUND = 3


def twelve_megapixels() -> Image.Image:
    photo = Image.open(SOURCE).convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (SIZE[1], SIZE[0], 3))
    return Image.fromarray(np.clip(np.asarray(photo, np.float32) + noise, 0, 255).astype(np.uint8))


def files() -> dict[str, tuple[str, bytes]]:
    """Label -> (file name, bytes): the photo in each format, encoded once."""
    from tests.support.camera_files import dng, encoded

    photo = twelve_megapixels()
    jpeg = encoded(photo, "JPEG", quality=90)
    return {
        "JPEG": ("photo.jpg", jpeg),
        "HEIC": ("photo.heic", encoded(photo, "HEIF", quality=80)),
        "AVIF": ("photo.avif", encoded(photo, "AVIF", quality=70, speed=8)),
        "JPEG XL": ("photo.jxl", encoded(photo, "JXL", quality=90, effort=3)),
        "DNG, full-size preview": ("photo.dng", dng(photo, preview=jpeg)),
        "DNG, demosaiced at half size": ("photo.dng", dng(photo)),
    }


def rate(decode: Callable[[], object], rounds: int, baseline: Callable[[], object]) -> tuple[float, float]:
    """(photos/s of `decode`, photos/s of `baseline`), interleaved round by round, the best round of each."""
    best, best_baseline = 0.0, 0.0
    for _ in range(rounds):
        for work, is_baseline in ((baseline, True), (decode, False)):
            started = time.perf_counter()
            for _ in range(DECODES_PER_ROUND):
                work()
            photos_per_s = DECODES_PER_ROUND / (time.perf_counter() - started)
            if is_baseline:
                best_baseline = max(best_baseline, photos_per_s)
            else:
                best = max(best, photos_per_s)
    return best, best_baseline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> Iterator[Row]:
    if not SOURCE.exists():
        print(f"formats: skipped, {SOURCE} is missing (../shared/datasets)", file=sys.stderr)
        return
    encoded_files = files()
    jpeg_name, jpeg = encoded_files.pop("JPEG")

    def baseline() -> object:
        return decode_photo(jpeg, MIN_SHORTER, MIN_LONGER, jpeg_name)

    # Forked children first: once this process has run LibRaw's OpenMP threads, its forked children would deadlock.
    for label in ("HEIC", "DNG, demosaiced at half size"):
        name, data = encoded_files[label]
        isolated, base = rate(lambda: decode_for_model(data, [SPEC], name), args.rounds, baseline)
        yield Row(f"12 MP {label}, in a forked child as indexing does: decodes/s", isolated, base, "photos/s",
                  note="baseline: the JPEG with draft, in process")
    for label, (name, data) in encoded_files.items():
        size = f"{len(data) / 1e6:.1f} MB"
        ours, base = rate(lambda: decode_photo(data, MIN_SHORTER, MIN_LONGER, name), args.rounds, baseline)
        yield Row(f"12 MP {label}, in process: decodes/s", ours, base, "photos/s", note=f"{size}; baseline: the JPEG with draft")
