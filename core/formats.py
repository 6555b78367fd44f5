"""Which files are photos, which decoder reads each, and which a browser can show: one owner, by file name.

The scan sorts files by their suffix alone (it never opens one); the decoder
is chosen by it too, since camera RAW files are TIFF-like containers that
Pillow would misread as the small picture in front. Uploads have no trusted
name and are read by content, with Pillow's formats only (see app/search.py).

Needs no torch, numpy or decoder at import, so the web app can ask it
everything; `register_decoders` adds HEIC/HEIF (pillow-heif) and JPEG XL
(pillow-jxl-plugin) to Pillow where a decode is about to happen. AVIF is
Pillow's own since Pillow 11.3 (pillow-heif 1.x no longer reads it).
"""

from __future__ import annotations

import functools
from pathlib import PurePosixPath

# Read by Pillow (its own plugins, or the two registered below).
PILLOW_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".avif"})
JXL_SUFFIXES = frozenset({".jxl"})
# Read by rawpy (LibRaw): the ten camera RAW formats of issue #22.
RAW_SUFFIXES = frozenset({".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"})
IMAGE_SUFFIXES = PILLOW_SUFFIXES | HEIF_SUFFIXES | JXL_SUFFIXES | RAW_SUFFIXES
PHOTO_FORMATS_TEXT = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF, JPEG XL and camera RAW"

VIDEO_SUFFIXES = frozenset({".mov", ".mp4", ".m4v", ".avi", ".3gp", ".mkv", ".webm"})
# Images Lookalike does not read, named by extension in the summary so nobody wonders where they went.
UNSUPPORTED_IMAGE_SUFFIXES = frozenset({
    ".psd", ".psb", ".xcf", ".kra", ".svg", ".svgz", ".ico", ".icns", ".jp2", ".j2k", ".jpx", ".exr", ".hdr",
    ".tga", ".dds", ".pcx", ".ppm", ".pgm", ".pbm", ".x3f", ".mrw", ".nrw", ".3fr", ".erf", ".mef",
    ".mos", ".iiq", ".dcr", ".kdc", ".srf", ".sr2", ".rwl", ".raw",
})

# What every current browser shows in an <img> or as a page of its own; the rest get a JPEG rendition to view.
BROWSER_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".avif"})


# TIFF-structured RAW files whose header spells other than TIFF's: Olympus ORF, Panasonic RW2.
_TIFF_LIKE = {b"IIRO": b"II*\x00", b"IIRS": b"II*\x00", b"MMOR": b"MM\x00*", b"IIU\x00": b"II*\x00"}
_TIFF = (b"II*\x00", b"MM\x00*")


def as_tiff(data: bytes) -> bytes | None:
    """A TIFF-structured file (DNG, CR2, NEF, ARW, PEF, SRW, ORF, RW2) with TIFF's own header, for reading its EXIF; else None."""
    header = _TIFF_LIKE.get(data[:4], data[:4])
    if header not in _TIFF:
        return None
    return data if header == data[:4] else header + data[4:]


def suffix_of(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


def is_raw(path: str) -> bool:
    """Whether the file is decoded by rawpy rather than Pillow."""
    return suffix_of(path) in RAW_SUFFIXES


def isolated_decoder(path: str) -> bool:
    """Whether its decoder is a library that may crash the process on a hostile file: decoded in a child process.

    Pillow's own decoders (JPEG, PNG, ...) have guarded every photo since the
    first version and run in the worker itself, with no process to start.
    """
    return suffix_of(path) in HEIF_SUFFIXES | JXL_SUFFIXES | RAW_SUFFIXES


def browser_shows(path: str) -> bool:
    """Whether a browser can show the original itself; otherwise the app serves a JPEG rendition to view."""
    return suffix_of(path) in BROWSER_SUFFIXES


@functools.cache
def register_decoders() -> None:
    """Teach Pillow HEIC/HEIF and JPEG XL, once per process."""
    import pillow_heif
    import pillow_jxl  # noqa: F401 - registers the JPEG XL plugin on import

    pillow_heif.register_heif_opener()
