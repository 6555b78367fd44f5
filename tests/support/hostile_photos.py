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
    "scan-bomb.jpg": "scans",
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


def scan_bomb(width: int = 6000, height: int = 6000, scans: int = 2000, mode: str = "L") -> bytes:
    """A progressive JPEG of `width` × `height` with `scans` empty scans added before its end: about 10 bytes a scan.

    Each one is a copy of the file's first scan header (the DC scan, of every
    component) with no data after it; libjpeg warns and walks the whole image
    once for each, at any draft size.
    """
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "grey").save(buffer, "JPEG", progressive=True, quality=50, subsampling=0)
    data = buffer.getvalue()
    first = data.index(b"\xff\xda")
    header = data[first : first + 2 + int.from_bytes(data[first + 2 : first + 4], "big")]
    return data.removesuffix(b"\xff\xd9") + header * scans + b"\xff\xd9"


def gif_polyglot(tail: bytes) -> bytes:
    """A valid GIF with `tail` after it: a picture to a decoder, a page or a script to a browser told so.

    The GIF is 10,799 pixels wide, so that its header reads `GIF87a/*`: a
    `tail` starting `*/=1;` makes the whole file a valid script as well.
    """
    buffer = io.BytesIO()
    Image.new("P", (0x2A2F, 1)).save(buffer, "GIF")
    return buffer.getvalue() + tail


# The probe's pair, as photos 0 and 1: a GIF that is a page loading photo 1's original as a script, and that
# script, a GIF too. Served by their names (text/html, text/javascript), the script runs on the gallery's origin.
EVIL_ORIGINALS = {
    "evil.html": gif_polyglot(b"<html><body><script src='/photos/1/original'></script></body></html>"),
    "evil.js": gif_polyglot(b"*/=1; document.title = 'script ran';\n"),
}


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
        "scan-bomb.jpg": scan_bomb(),
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
