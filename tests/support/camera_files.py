"""Real HEIC, AVIF, JPEG XL and DNG files made from a photo's pixels, for tests and benchmarks.

pillow-heif writes HEIC, Pillow AVIF, pillow-jxl-plugin JPEG XL, and pidng
DNG: a Bayer mosaic sampled from the photo, which rawpy (LibRaw) demosaics
back into it. A DNG may carry a JPEG preview, as camera RAW files do: a
second IFD of a JPEG-compressed RGB picture, which LibRaw takes as the thumbnail.
"""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from core.formats import register_decoders

_ORIENTATION, _MAKE, _MODEL, _EXIF_IFD, _GPS_IFD, _DATE_TIME_ORIGINAL = 0x0112, 0x010F, 0x0110, 0x8769, 0x8825, 0x9003


def exif_block(*, orientation: int = 1, make: str = "", model: str = "", taken: str = "", gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    if make:
        exif[_MAKE] = make
    if model:
        exif[_MODEL] = model
    if taken:
        exif.get_ifd(_EXIF_IFD)[_DATE_TIME_ORIGINAL] = taken
    if gps:
        exif.get_ifd(_GPS_IFD).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return exif


def encoded(image: Image.Image, format: str, exif: Image.Exif | None = None, **options) -> bytes:
    """`image` saved as HEIF, AVIF, JXL, JPEG... with the EXIF given."""
    register_decoders()
    buffer = io.BytesIO()
    extra = {"exif": exif.tobytes()} if exif is not None else {}
    image.convert("RGB").save(buffer, format, **extra, **options)
    return buffer.getvalue()


def dng(image: Image.Image, *, make: str = "Canon", model: str = "Canon EOS R5", orientation: int = 1,
        preview: bytes | None = None, xmp: str = "") -> bytes:
    """A 12-bit RGGB DNG of `image` (even width and height), with `preview` as its embedded JPEG and `xmp` if given."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation
    from pidng.dng import Type

    rgb = np.asarray(image.convert("RGB"), dtype=np.uint16)
    height, width = rgb.shape[:2]
    mosaic = np.empty((height, width), np.uint16)
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    mosaic = (mosaic.astype(np.float32) ** 2 / 255 * 16).astype(np.uint16)  # linear light, 12 bits
    tags = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, width), (Tag.ImageLength, height), (Tag.TileWidth, width), (Tag.TileLength, height),
        (Tag.Orientation, orientation), (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 0), (Tag.WhiteLevel, 4095),
        (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.Make, make), (Tag.Model, model), (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
    ]:
        tags.set(tag, value)
    if xmp:
        tags.set((700, Type.Ascii), xmp)  # XMP, where a DNG may say where it was taken
    with tempfile.TemporaryDirectory() as folder:
        writer = RAW2DNG()
        writer.options(tags, path=folder, compress=False)
        data = bytearray(Path(writer.convert(mosaic, filename="photo")).read_bytes())
    if preview is not None:
        _append_preview(data, preview)
    return bytes(data)


def _append_preview(data: bytearray, jpeg: bytes) -> None:
    """Chain a second IFD holding `jpeg` (JPEG-compressed YCbCr, 8 bits) after the little-endian TIFF's first."""
    width, height = Image.open(io.BytesIO(jpeg)).size
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    data += b"\0" * (len(data) & 1)
    offset = len(data)
    data += jpeg + b"\0" * (len(jpeg) & 1)
    entries = [(254, 4, 1), (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 7), (262, 3, 6),
               (273, 4, offset), (277, 3, 3), (279, 4, len(jpeg))]
    ifd = len(data)
    data += struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        data += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    data += struct.pack("<I", 0)
    struct.pack_into("<I", data, first + 2 + 12 * count, ifd)
