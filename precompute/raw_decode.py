"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF, PEF, SRW) through rawpy (LibRaw).

Opening a RAW reads its headers only, so the sensor's size is checked
against the decompression-bomb limit before anything is unpacked. Then the
cheaper of two pictures is decoded: the JPEG preview the camera embedded,
when it is at least as large as the model and the thumbnails need (decoded
at reduced size like any JPEG), else the sensor data demosaiced at half
size. Either is turned as the RAW's own orientation says (LibRaw's `flip`).

The date taken and the camera come from the RAW's TIFF-structured EXIF where
it has one (DNG, CR2, NEF, ARW, PEF, SRW, ORF, RW2), else from the preview's
EXIF, else the date LibRaw read; never the location.
"""

from __future__ import annotations

import io
import warnings
from datetime import timezone

import numpy as np
import rawpy
from PIL import Image

from core.formats import as_tiff
from precompute.decode import MAX_PIXELS, DecodedPhoto, DecodeError, check_aspect_ratio, decode_image
from precompute.photo_metadata import ExifSummary, summarise_exif

# LibRaw's flip as an EXIF orientation: 3 upside down, 5 turned left, 6 turned right.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}
# A preview whose shape differs more than this from the sensor's is letterboxed or cropped: not the photo.
_PREVIEW_SHAPE_TOLERANCE = 0.03


def decode_raw(data: bytes, min_shorter: int, min_longer: int) -> DecodedPhoto:
    """An upright RGB picture of a RAW file, at least `min_shorter` × `min_longer` where the sensor has them."""
    try:
        with warnings.catch_warnings():
            # rawpy warns in every forked process; ours never ran LibRaw's threads before forking (see prepare.py).
            warnings.filterwarnings("ignore", message="rawpy is being used in a process created by multiprocessing")
            with rawpy.imread(io.BytesIO(data)) as raw:
                sizes = raw.sizes
                if sizes.raw_width * sizes.raw_height > MAX_PIXELS:
                    raise DecodeError(
                        f"too many pixels (possible decompression bomb): the sensor data is {sizes.raw_width} × "
                        f"{sizes.raw_height}, over {MAX_PIXELS:,}"
                    )
                orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1)
                width, height = (sizes.height, sizes.width) if orientation in (6, 8) else (sizes.width, sizes.height)
                if not width or not height:
                    raise DecodeError("damaged RAW file: it declares no image")
                check_aspect_ratio(width, height)
                preview = _preview(raw, sizes.width, sizes.height, min_shorter, min_longer, orientation)
                if preview is not None:
                    image, preview_exif = preview.image, preview.exif
                else:
                    image, preview_exif = Image.fromarray(_half_size(raw)), ExifSummary()
                summary = _summary(data, preview_exif, raw)
    except rawpy.LibRawFileUnsupportedError:
        raise DecodeError("not a RAW file LibRaw can read") from None
    except (rawpy.LibRawError, MemoryError) as err:
        raise DecodeError(f"damaged RAW file: {err}") from None
    return DecodedPhoto(image, width, height, summary)


def _half_size(raw: rawpy.RawPy) -> np.ndarray:
    """The sensor data demosaiced at half size (each 2 × 2 block one pixel), 8-bit sRGB, turned upright by LibRaw."""
    return raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, no_auto_bright=False)


def _preview(raw: rawpy.RawPy, width: int, height: int, min_shorter: int, min_longer: int, orientation: int) -> DecodedPhoto | None:
    """The embedded JPEG preview, upright, when it shows the whole photo at least as large as needed; else None."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, MemoryError):
        return None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None
    try:
        with Image.open(io.BytesIO(thumb.data)) as header:
            preview_width, preview_height = header.size
    except Exception:  # noqa: BLE001 - a damaged preview: the sensor data is still there
        return None
    if abs(preview_width / preview_height - width / height) > _PREVIEW_SHAPE_TOLERANCE * width / height:
        return None
    shorter, longer = sorted((preview_width, preview_height))
    if shorter < min(min_shorter, width, height) or longer < min(min_longer, max(width, height)):
        return None
    try:
        return decode_image(thumb.data, min_shorter, min_longer, orientation=orientation)
    except DecodeError:
        return None


def _summary(data: bytes, preview_exif: ExifSummary, raw: rawpy.RawPy) -> ExifSummary:
    """Date taken and camera from the RAW's own EXIF, else the preview's, else LibRaw's date."""
    tiff = as_tiff(data)
    if tiff is not None:
        exif = Image.Exif()
        try:
            exif.load(tiff)
        except Exception:  # noqa: BLE001 - damaged EXIF: what the preview or LibRaw says is all there is
            exif = Image.Exif()
        summary = summarise_exif(exif)
    else:
        summary = ExifSummary()
    taken = summary.taken or preview_exif.taken or _libraw_time(raw)
    return ExifSummary(taken, summary.camera or preview_exif.camera, max(summary.tags, preview_exif.tags))


def _libraw_time(raw: rawpy.RawPy) -> int | None:
    """LibRaw's date taken as the camera's clock showed it, in seconds read as UTC; None when it has none."""
    stamp = raw.other.timestamp  # naive: the clock's reading
    if stamp.year <= 1970:
        return None
    return int(stamp.replace(tzinfo=timezone.utc).timestamp())

