"""What a model expects of its input, and the normalisation that goes with it.

The recipe mirrors torchvision's `Resize(shorter side)`, `CenterCrop` and
`Normalize`, so embeddings match what the model's authors measured. The
resizing itself is in `precompute.resize`; this module needs no torch, so the
web app can read an index's recipe without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


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


def normalise(crops: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """uint8 (..., H, W, 3) crops to the model's float32 (..., 3, H, W) input."""
    pixels = crops.astype(np.float32) / 255.0
    pixels = (pixels - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(pixels, -1, -3))
