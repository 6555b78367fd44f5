"""Step 2: decode one photo into an upright RGB image, no larger than needed.

JPEGs are decoded with Pillow's `draft`, which scales in the DCT domain: a
12-megapixel photo is decoded at 1/2, 1/4 or 1/8 size directly, several times
faster than a full decode followed by a resize.

Pillow reads every format but camera RAW, HEIC/HEIF and JPEG XL through the
plugins registered here; `precompute.decoders` picks this decoder or
LibRaw's (`precompute.raw_decode`) by the file's name.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.formats import register_decoders
from core.jpeg_scans import TooManyScans, check_scan_count
from precompute.photo_metadata import ExifSummary, summarise_exif

register_decoders()

# Photos larger than this are refused as decompression bombs (Pillow's default
# is about 89 megapixels; real cameras stay well under 200).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Longer side over shorter side. Resizing the shorter side to the model's input
# would blow a 1 × 100000 strip up to gigabytes; no camera photo comes near this.
MAX_ASPECT_RATIO = 50

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ORIENTATION = 0x0112
# Formats whose decoders cannot stop at a reduced size as JPEG's `draft` does:
# shrunk by a whole factor right after decoding, to the same bounds.
_DECODED_WHOLE = frozenset({"HEIF", "AVIF", "JXL"})
# How an EXIF orientation is undone (as ImageOps.exif_transpose does it).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class DecodeError(Exception):
    """The file is not a photo Lookalike can read; the message says why."""


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright RGB, reduced for speed where the format allows
    width: int  # upright size of the original
    height: int
    exif: ExifSummary = ExifSummary()  # date taken, camera, tag count: read here, from the EXIF the decoder parsed anyway


def decode_image(data: bytes, min_shorter: int, min_longer: int, orientation: int | None = None) -> DecodedPhoto:
    """Decode image bytes into an upright RGB image with Pillow.

    The result keeps at least `min_shorter` pixels on its shorter side and
    `min_longer` on its longer side (where the original has them), so a JPEG
    can be decoded at reduced size. `orientation` overrides the EXIF one: a RAW file's preview is turned as the RAW says.
    Pillow refuses a decompression bomb from the size the header declares,
    before decoding, for every format it reads (HEIC's from its container).
    A JPEG of too many scans is refused before decoding (core/jpeg_scans.py):
    reduced size does not make scans cheaper.
    """
    try:
        check_scan_count(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            exif = image.getexif()
            orientation = exif.get(_ORIENTATION, 1) if orientation is None else orientation
            summary = summarise_exif(exif)
            width, height = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
            check_aspect_ratio(width, height)
            if image.format == "JPEG":
                landscape = image.width >= image.height
                image.draft("RGB", (min_longer, min_shorter) if landscape else (min_shorter, min_longer))
            image.load()
            if image.format in _DECODED_WHOLE:
                image = _reduced(image, min_shorter, min_longer)
            if orientation in _UPRIGHT:
                image = image.transpose(_UPRIGHT[orientation])
            return DecodedPhoto(to_rgb(image), width, height, summary)
    except TooManyScans as err:
        raise DecodeError(str(err)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DecodeError(f"too many pixels (possible decompression bomb): {err}") from None
    except Image.UnidentifiedImageError:
        raise DecodeError("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, RuntimeError) as err:  # RuntimeError: the JPEG XL plugin's
        raise DecodeError(f"damaged image: {first_line(err)}") from None


def first_line(err: Exception) -> str:
    """An error's message for a one-line report (the JPEG XL plugin's run to several lines)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _reduced(image: Image.Image, min_shorter: int, min_longer: int) -> Image.Image:
    """`image` box-reduced by the largest whole factor that keeps it within the bounds `draft` keeps."""
    landscape = image.width >= image.height
    bound_width, bound_height = (min_longer, min_shorter) if landscape else (min_shorter, min_longer)
    factor = min(image.width // max(1, bound_width), image.height // max(1, bound_height))
    return image.reduce(factor) if factor >= 2 else image


def check_aspect_ratio(width: int, height: int) -> None:
    if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
        raise DecodeError(f"{width} × {height} pixels: aspect ratio over {MAX_ASPECT_RATIO}:1 is not a photo")


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
