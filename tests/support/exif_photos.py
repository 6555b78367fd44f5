"""Photos with the EXIF a camera writes (date taken, make and model, a GPS position), made with Pillow or by hand."""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image

from tests.support.tiny_index import write_photo

GPS_LATITUDE = (48.0, 51.0, 29.5)  # what must never reach the index


def write_exif_photo(
    path: Path, taken: str | None = "2021:06:15 14:30:00", make: str = "Canon", model: str = "Canon EOS 5D",
    gps: bool = True, size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (120, 90, 60),
) -> None:
    """A JPEG like a camera's: DateTimeOriginal in the Exif block, Make and Model, and (with `gps`) a location."""
    write_photo(path, *size, colour)
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: GPS_LATITUDE, 3: "E", 4: (2.0, 17.0, 40.2)})
    with Image.open(path) as image:
        image.load()
        image.save(path, "JPEG", exif=exif)


def tiff_structure(ifds: list[list[tuple]], chain: dict[int, int] | None = None, tail: bytes = b"") -> bytes:
    """A big-endian TIFF structure, built by hand to put IFD pointers where Pillow never writes them.

    IFD 0 comes first, then the others in order, then `tail`. An entry is
    (tag, type, count, value): value is the bytes of the value, ("ifd", k) for
    the offset of IFD k, or "tail" for the offset of `tail`. `chain` maps an
    IFD to the one after it (IFD0 to IFD1, say).
    """
    def extra(entries):  # values over 4 bytes, after the IFD, each padded to an even length
        return b"".join(v + b"\0" * (len(v) & 1) for *_, v in entries if isinstance(v, bytes) and len(v) > 4)

    offsets, at = [], 8
    for entries in ifds:
        offsets.append(at)
        at += 2 + 12 * len(entries) + 4 + len(extra(entries))
    out = b"MM\x00*" + struct.pack(">I", 8)
    for number, entries in enumerate(ifds):
        values_at = offsets[number] + 2 + 12 * len(entries) + 4
        out += struct.pack(">H", len(entries))
        for tag, kind, count, value in sorted(entries, key=lambda entry: entry[0]):
            if value == "tail":
                field = struct.pack(">I", at)
            elif isinstance(value, tuple):
                field = struct.pack(">I", offsets[value[1]])
            elif len(value) <= 4:
                field = value.ljust(4, b"\0")
            else:
                field = struct.pack(">I", values_at)
                values_at += len(value) + (len(value) & 1)
            out += struct.pack(">HHI", tag, kind, count) + field
        out += struct.pack(">I", offsets[(chain or {})[number]] if number in (chain or {}) else 0)
        out += extra(sorted(entries, key=lambda entry: entry[0]))
    return out + tail
