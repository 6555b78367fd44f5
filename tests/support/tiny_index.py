"""A five-photo index built with the real pipeline in a few seconds, for tests that need no data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = {  # name: (width, height, colour)
    "alpha.jpg": (640, 480, (200, 40, 40)),
    "beta.jpg": (480, 640, (40, 200, 40)),
    "café.jpg": (800, 600, (40, 40, 200)),
    "delta.png": (300, 300, (200, 200, 40)),
    "epsilon.jpg": (1024, 512, (40, 200, 200)),
}


def write_photo(path: Path, width: int, height: int, colour: tuple[int, int, int]) -> None:
    """A photo-like picture: a colour gradient with noise, so every file is distinct."""
    rng = np.random.default_rng(sum(path.name.encode()))
    ramp = np.linspace(0.3, 1.0, width, dtype=np.float32)[None, :, None]
    pixels = np.asarray(colour, np.float32)[None, None, :] * ramp + rng.normal(0, 12, (height, width, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


def build_tiny_index(root: Path) -> Path:
    """Write PHOTOS into root/photos and index them into root/index.pkl (efficientnet-lite0, k=3)."""
    from precompute.build import BuildOptions, build_index

    photos = root / "photos"
    photos.mkdir(parents=True)
    for name, (width, height, colour) in PHOTOS.items():
        write_photo(photos / name, width, height, colour)
    index_path = root / "index.pkl"
    build_index(photos, index_path, BuildOptions(model="efficientnet-lite0", k=3, workers=0))
    return index_path
