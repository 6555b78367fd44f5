"""Resize photos for the model and for thumbnails with torch's vectorised uint8 kernels.

Resizing was the biggest cost of preparing a photo: Pillow's antialiased
resampling takes 4–6 ms to shrink a 500 × 375 photo here. torch's
`interpolate(..., antialias=True)` on uint8 channels-last pixels computes the
same filters (Pillow's bilinear and bicubic, a = -0.5) with AVX2 in a fifth of
the time, within 1–2 levels of Pillow's output.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image

from precompute.preprocess import Preprocessing, normalise

INTERPOLATIONS = ("bilinear", "bicubic")
_KERNELS = {
    "bilinear": torch.ops.aten._upsample_bilinear2d_aa.out,
    "bicubic": torch.ops.aten._upsample_bicubic2d_aa.out,
}


def resize(pixels: np.ndarray, width: int, height: int, interpolation: str = "bicubic") -> np.ndarray:
    """uint8 RGB pixels (H, W, 3) to (height, width, 3), antialiased when shrinking."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
    if pixels.shape[:2] == (height, width):
        return pixels
    # (1, 3, H, W) views of HWC memory are channels-last, the layout the fast
    # kernels read and write. `interpolate` itself would return channels-first
    # and cost a transposing copy as long as the resize, so the kernel (what
    # interpolate calls, with identical results) writes into HWC memory.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only pixels from Pillow: the kernel only reads them
        source = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).unsqueeze(0)
    resized = torch.empty((1, height, width, 3), dtype=torch.uint8)
    kernel = _KERNELS[interpolation]
    with torch.inference_mode():
        kernel(source, [height, width], False, None, None, out=resized.permute(0, 3, 1, 2))
    return resized[0].numpy()


def shorter_side_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) scaled so the shorter side is `shorter`, as torchvision's Resize(int) rounds."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def fit_within(width: int, height: int, longer: int) -> tuple[int, int]:
    """(width, height) scaled down, never up, so the longer side is at most `longer`."""
    scale = longer / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def model_crop(pixels: np.ndarray, spec: Preprocessing) -> np.ndarray:
    """uint8 RGB pixels (H, W, 3) resized and centre-cropped for the model, still uint8 HWC.

    uint8 is a quarter of the float size to hand between processes; normalising
    is left to `preprocess.normalise`, which the fast runners do inside the model graph.
    """
    width, height = shorter_side_size(pixels.shape[1], pixels.shape[0], spec.resize)
    resized = resize(pixels, width, height, spec.interpolation)
    top = int(round((height - spec.crop) / 2.0))
    left = int(round((width - spec.crop) / 2.0))
    return resized[top : top + spec.crop, left : left + spec.crop]


def to_model_input(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """An RGB image as a float32 CHW array, resized, cropped and normalised."""
    return normalise(model_crop(np.asarray(image), spec), spec)
