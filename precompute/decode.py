"""Step 2: decode one photo into an upright RGB image, no larger than needed.

JPEGs are decoded with Pillow's `draft`, which scales in the DCT domain: a
12-megapixel photo is decoded at 1/2, 1/4 or 1/8 size directly, several times
faster than a full decode followed by a resize.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from core.jpeg_scans import TooManyScans, check_scan_count
from precompute.photo_metadata import ExifSummary, summarise_exif

# Photos larger than this are refused as decompression bombs (Pillow's default
# is about 89 megapixels; real cameras stay well under 200).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Longer side over shorter side. Resizing the shorter side to the model's input
# would blow a 1 × 100000 strip up to gigabytes; no camera photo comes near this.
MAX_ASPECT_RATIO = 50

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


class DecodeError(Exception):
    """The file is not a photo Lookalike can read; the message says why."""


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright RGB, reduced for speed where the format allows
    width: int  # upright size of the original
    height: int
    exif: ExifSummary = ExifSummary()  # date taken, camera, tag count: read here, from the EXIF the decoder parsed anyway


def decode_photo(data: bytes, min_shorter: int, min_longer: int) -> DecodedPhoto:
    """Decode image bytes into an upright RGB image.

    The result keeps at least `min_shorter` pixels on its shorter side and
    `min_longer` on its longer side (where the original has them), so a JPEG
    can be decoded at reduced size. A JPEG of too many scans is refused before
    decoding (core/jpeg_scans.py): reduced size does not make scans cheaper.
    """
    try:
        check_scan_count(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            exif = image.getexif()
            orientation = exif.get(0x0112, 1)
            summary = summarise_exif(exif)
            width, height = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
            if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
                raise DecodeError(f"{width} × {height} pixels: aspect ratio over {MAX_ASPECT_RATIO}:1 is not a photo")
            if image.format == "JPEG":
                landscape = image.width >= image.height
                image.draft("RGB", (min_longer, min_shorter) if landscape else (min_shorter, min_longer))
            image.load()
            image = ImageOps.exif_transpose(image)
            return DecodedPhoto(to_rgb(image), width, height, summary)
    except TooManyScans as err:
        raise DecodeError(str(err)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DecodeError(f"too many pixels (possible decompression bomb): {err}") from None
    except Image.UnidentifiedImageError:
        raise DecodeError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as err:
        raise DecodeError(f"damaged image: {err}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, compositing transparency over white."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        return _wide_to_rgb(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")  # no copy of the largest buffer
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and float grey images: scale to 8 bits instead of clipping."""
    values = np.asarray(image, dtype=np.float32)
    top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    grey = np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")
