"""A corpus of hostile and awkward image files, generated on the spot (nothing binary is committed)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# Names of the files that must be skipped, with a word their reason must contain.
BAD = {
    "truncated.jpg": "damaged",
    "empty.jpg": "empty",
    "text.jpg": "not an image",
    "bomb.png": "decompression bomb",
    "huge-header.jpg": "decompression bomb",
    "strip.png": "aspect ratio",
    "loop.jpg": "symbolic links",
}
# Awkward but valid: each must be indexed.
AWKWARD = ("cmyk.jpg", "grey16.png", "palette-transparent.png", "animated.gif", "café-🌅.jpg")
NON_UTF8_NAME = b"caf\xe9-latin1.jpg"


def photo_like(width: int = 480, height: int = 320, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (JPEG-friendly, unlike noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [127 + 120 * np.sin(x / rng.uniform(20, 60) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(20, 60)) for _ in range(3)]
    return Image.fromarray(np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` × `height` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim `width` × `height`."""
    data = bytearray(jpeg_bytes(photo_like(64, 48)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def progressive_scan_bomb(width: int = 6000, height: int = 6000, scans: int = 20_000) -> bytes:
    """A progressive JPEG under the pixel limits that costs a decoder minutes: thousands of empty 10-byte scans.

    libjpeg walks every coefficient block of the image once per scan, whatever the
    draft size, so 36 MP and 20,000 scans (200 KB) are 20,000 passes over 560,000
    blocks. Each scan is an AC refinement of the one component with no data.
    """
    data = bytearray(jpeg_bytes(photo_like(64, 48).convert("L"), progressive=True))
    sof = data.index(b"\xff\xc2")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    empty_scan = b"\xff\xda" + struct.pack(">HBBBBBB", 8, 1, 1, 0x00, 1, 63, 0x10)
    return bytes(data[: data.rindex(b"\xff\xd9")]) + empty_scan * scans + b"\xff\xd9"


def write_corpus(folder: Path) -> None:
    """Write every BAD and AWKWARD file, plus the non-UTF-8 name, into `folder`."""
    good = jpeg_bytes(photo_like(seed=1))
    files = {
        "truncated.jpg": good[: len(good) // 2],
        "empty.jpg": b"",
        "text.jpg": b"This is a text file, not a photo.\n",
        "bomb.png": png_header_only(100_000, 100_000),
        "huge-header.jpg": jpeg_with_size(15_000, 15_000),
        "café-🌅.jpg": jpeg_bytes(photo_like(seed=2)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    Image.new("RGB", (2, 400), (200, 30, 30)).save(folder / "strip.png")
    photo_like(seed=3).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    ramp = (np.linspace(0, 65535, 320 * 240).reshape(240, 320)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "grey16.png")
    palette = photo_like(seed=4).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    palette.save(folder / "palette-transparent.png", transparency=0)
    frames = [photo_like(seed=s).convert("P") for s in (5, 6, 7)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    os.symlink("loop.jpg", folder / "loop.jpg")
    os.symlink(".", folder / "folder-loop")
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as out:
        out.write(jpeg_bytes(photo_like(seed=8)))


# Upload bombs: one real image of every format search accepts, each small on the wire but with a large
# pixel count. name: (format, mode, save options); the modes and options keep the files small
# (BMP: 6 MB at one bit a pixel for 48 MP).
UPLOAD_BOMBS = {
    "bomb.png": ("PNG", "1", {}),
    "bomb.jpg": ("JPEG", "L", {}),
    "bomb.webp": ("WEBP", "RGB", {"lossless": True, "method": 0}),
    "bomb.gif": ("GIF", "1", {}),
    "bomb.bmp": ("BMP", "1", {}),
    "bomb.tif": ("TIFF", "1", {"compression": "tiff_deflate"}),
}


def write_upload_bombs(folder: Path, width: int, height: int) -> list[Path]:
    """Write UPLOAD_BOMBS of `width` × `height` pixels into `folder`; return their paths."""
    for name, (fmt, mode, options) in UPLOAD_BOMBS.items():
        Image.new(mode, (width, height)).save(folder / name, fmt, **options)
    return [folder / name for name in UPLOAD_BOMBS]
