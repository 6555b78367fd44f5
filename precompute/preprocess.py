"""Turn an RGB photo into the normalised tensor a model was trained on.

The arithmetic mirrors torchvision's `Resize(shorter side)`, `CenterCrop` and
`Normalize`, so embeddings match what the model's authors measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Preprocessing:
    """How a model expects its input: shorter side resized, then centre-cropped."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def at_scale(self, crop: int) -> "Preprocessing":
        """The same recipe for another input size, keeping the resize-to-crop ratio."""
        return replace(self, resize=round(crop * self.resize / self.crop), crop=crop)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data


def resize_shorter_side(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    return image if new == image.size else image.resize(new, resample)


def centre_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def model_crop(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """An RGB image resized and centre-cropped for the model: uint8 HWC, a quarter of the float size.

    Normalising is left to `normalise`, which the fast runners do inside the model graph.
    """
    resized = resize_shorter_side(image, spec.resize, _RESAMPLING[spec.interpolation])
    return np.asarray(centre_crop(resized, spec.crop), dtype=np.uint8)


def normalise(crops: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """uint8 (..., H, W, 3) crops to the model's float32 (..., 3, H, W) input."""
    pixels = crops.astype(np.float32) / 255.0
    pixels = (pixels - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(pixels, -1, -3))


def to_model_input(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """An RGB image as a float32 CHW array, resized, cropped and normalised."""
    return normalise(model_crop(image, spec), spec)
