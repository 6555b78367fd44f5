"""What a photo's EXIF says about it that the index keeps: when it was taken, with which camera, how many tags.

Read from the EXIF Pillow already parsed while decoding (`decode.decode_photo`),
never in a second pass over the files; only an update over an index built
before these fields existed reads them from file headers (`summary_from_file`),
once. Location (the GPS block) is deliberately never kept, only its tags
counted: the index is shipped to web servers and buckets, and where a photo
was taken stays in the original, where `LOOKALIKE_ORIGINALS` governs it.

The date taken is EXIF DateTimeOriginal, the time on the camera's clock. EXIF
rarely says the time zone, so it is kept as the clock showed it: seconds since
1970 as if that clock ran on UTC. Without it, the file's modification time is
used (in UTC), and the record says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from core.index_file import MAX_CAMERA_CHARS

_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_MAKE, _MODEL, _DATE_TIME_ORIGINAL = 0x010F, 0x0110, 0x9003
_EXIF_DATE = re.compile(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_YEARS = range(1826, 2201)  # the first photograph to well past any camera's clock
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class ExifSummary:
    taken: int | None = None  # DateTimeOriginal: seconds since 1970 of the camera's clock read as UTC
    camera: str = ""  # "Make Model", cleaned; "" when the photo does not say
    tags: int = 0  # EXIF tags the photo carries (main, Exif, GPS and interoperability blocks)


def summarise_exif(exif: Image.Exif) -> ExifSummary:
    """The summary of an EXIF block Pillow has parsed; a damaged block gives what could be read, never an error.

    One odd tag must not cost a photo its place in the index, so nothing here raises.
    """
    try:
        blocks = [exif.get_ifd(ifd) for ifd in (_EXIF_IFD, _GPS_IFD, _INTEROP_IFD)]
        # The pointers to the blocks are not tags of their own (the interoperability block's is in the Exif block).
        pointers = (_EXIF_IFD in exif) + (_GPS_IFD in exif) + (_INTEROP_IFD in blocks[0])
        tags = len(exif) - pointers + sum(len(block) for block in blocks)
        return ExifSummary(_exif_time(blocks[0].get(_DATE_TIME_ORIGINAL)), camera_name(exif.get(_MAKE), exif.get(_MODEL)), tags)
    except Exception:  # Pillow raises many types (struct.error, KeyError, TypeError...) on damaged EXIF
        return ExifSummary()


def summary_from_file(path: Path) -> ExifSummary:
    """The summary read from a file's header only (no pixels decoded); empty when the file cannot be read."""
    try:
        with Image.open(path) as image:
            return summarise_exif(image.getexif())
    except Exception:  # unreadable or not an image: it simply has no summary
        return ExifSummary()


def _exif_time(value: object) -> int | None:
    """'2024:07:14 10:32:05' as seconds of that wall-clock time read as UTC; None for blanks and nonsense."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    match = _EXIF_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    if year not in _YEARS:
        return None
    try:
        return int(datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp())
    except ValueError:  # 0000:00:00, 2023:02:30, 25:00
        return None


def camera_name(make: object, model: object) -> str:
    """'Canon' + 'Canon EOS 5D' as 'Canon EOS 5D', 'Apple' + 'iPhone 12' as 'Apple iPhone 12'; at most MAX_CAMERA_CHARS."""
    make, model = _clean(make), _clean(model)
    brand = make.split(" ")[0].lower()
    if not model:
        name = make
    elif not make or model.lower().startswith(brand):
        name = model
    else:
        name = f"{make} {model}"
    return name[:MAX_CAMERA_CHARS].rstrip()


def _clean(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return ""
    return " ".join(_CONTROL.sub(" ", value).split())


def recorded_summary(record: dict) -> ExifSummary | None:
    """The summary a previous index recorded for a photo; None if it was built before it recorded one."""
    if record.get("exif_tags") is None:
        return None
    taken = record["taken"] if record["taken_source"] == "exif" else None
    return ExifSummary(taken, record["camera"], record["exif_tags"])


def photo_fields(summary: ExifSummary, mtime_ns: int) -> dict:
    """The pipeline record's metadata: `taken` (seconds), `taken_source` ('exif' or 'file'), `camera`, `exif_tags`."""
    if summary.taken is not None:
        taken, source = summary.taken, "exif"
    else:
        taken, source = mtime_ns // 1_000_000_000, "file"
    return {"taken": taken, "taken_source": source, "camera": summary.camera, "exif_tags": summary.tags}
