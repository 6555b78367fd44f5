"""The resize kernels: the same pixels as torch's public interpolate, and as Pillow's to within rounding."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from precompute.resize import fit_within, model_crop, resize, shorter_side_size
from precompute.preprocess import Preprocessing

PILLOW = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
PHOTO = skimage.data.astronaut()  # 512 × 512 RGB
# Shrinking a lot and a little, odd sizes, both aspect ratios, and enlarging.
SIZES = [(320, 240), (511, 300), (97, 203), (1, 1), (700, 640)]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", SIZES)
def test_resize_is_torchs_antialiased_interpolate(interpolation, size):
    width, height = size
    ours = resize(PHOTO, width, height, interpolation)
    batch = torch.from_numpy(PHOTO.copy()).permute(2, 0, 1).unsqueeze(0).contiguous(memory_format=torch.channels_last)
    public = torch.nn.functional.interpolate(batch, size=(height, width), mode=interpolation, antialias=True)
    assert ours.shape == (height, width, 3) and ours.dtype == np.uint8 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, public[0].permute(1, 2, 0).numpy())


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(320, 240), (341, 256), (97, 203)])
def test_resize_matches_pillow_to_within_rounding(interpolation, size):
    """What thumbnails and model crops do: shrink by 1.5× or more. (Near 1×, the two differ by up to 5 levels.)"""
    width, height = size
    ours = resize(PHOTO, width, height, interpolation).astype(int)
    pillow = np.asarray(Image.fromarray(PHOTO).resize(size, PILLOW[interpolation])).astype(int)
    assert np.abs(ours - pillow).max() <= 2
    assert np.mean(ours != pillow) < 0.1  # most pixels agree exactly


def test_resize_to_the_same_size_returns_the_pixels_untouched():
    assert resize(PHOTO, 512, 512) is PHOTO


def test_resize_refuses_an_unknown_interpolation():
    with pytest.raises(ValueError, match="unknown interpolation 'nearest'"):
        resize(PHOTO, 10, 10, "nearest")


def test_sizes_keep_the_aspect_ratio_and_never_enlarge():
    assert fit_within(4000, 3000, 960) == (960, 720)
    assert fit_within(3000, 4000, 320) == (240, 320)
    assert fit_within(500, 375, 960) == (500, 375)
    assert fit_within(10000, 1, 320) == (320, 1)
    assert shorter_side_size(500, 375, 256) == (341, 256)  # torchvision truncates the longer side
    assert shorter_side_size(375, 500, 256) == (256, 341)


def test_model_crop_is_the_centre_of_the_resized_photo():
    spec = Preprocessing(resize=256, crop=224, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bilinear")
    wide = np.ascontiguousarray(PHOTO[:300])  # 512 × 300: resized to 436 × 256
    crop = model_crop(wide, spec)
    resized = resize(wide, 436, 256, "bilinear")
    assert crop.shape == (224, 224, 3)
    np.testing.assert_array_equal(crop, resized[16:240, 106:330])
