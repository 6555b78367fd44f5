"""Originals as served or published: as they are on disk, without their location data, or not at all.

One owner for both places an original leaves this machine: the web app
(LOOKALIKE_ORIGINALS) and `python -m tools.publish --originals`. It needs
only Pillow, so the web app imports it without torch.

`stripped`, the default, removes what can say where a photo was taken, in
the served copy only; the file on disk is never touched:
- JPEG, PNG and WebP: every EXIF GPS block is dropped, wherever the EXIF
  structure points to it (`core/exif_gps.py`; camera, date,
  orientation and thumbnail stay), and XMP and IPTC (Photoshop) blocks,
  which can hold places, are dropped whole. Whatever follows the image's end
  (a JPEG's EOI, PNG's IEND, the RIFF size) is dropped too: a motion photo's
  MP4, with its own location atom, or a multi-picture JPEG's other pictures.
  The compressed pixels are copied byte for byte, never re-encoded.
- Other formats (TIFF, GIF, BMP, HEIC/HEIF, AVIF, JPEG XL and camera RAW)
  are served as they are when they carry no EXIF GPS, XMP or IPTC block,
  and withheld when they do: rewriting them could re-encode them (or, for
  HEIC and RAW, means rewriting a container whose offsets point everywhere),
  and serving them would give the place away. A RAW file Pillow cannot open
  is read as the TIFF structure it is; one that is not TIFF inside (CR3, RAF)
  cannot be read to tell, and is withheld. The web app shows these formats
  as a JPEG made without any metadata (app/renditions.py).
- Last, any EXIF block left anywhere in the copy (in a thumbnail, say) that
  still points to GPS gets the whole photo withheld.
"""

from __future__ import annotations

import io
import re
import zlib

from PIL import ExifTags, Image, UnidentifiedImageError

from core.exif_gps import has_gps, without_gps
from core.formats import as_tiff, register_decoders

MODES = ("as-is", "stripped", "off")
DEFAULT_MODE = "stripped"

_SOI, _SOS, _EOI, _APP1, _APP2, _APP13 = 0xD8, 0xDA, 0xD9, 0xE1, 0xE2, 0xED
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_EXIF = b"Exif\x00\x00"
_MPF = b"MPF\x00"  # a multi-picture JPEG's index of its other pictures, which follow its end
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # in scan data 0xFF is followed by 0, RSTn or fill
_XMP = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_IPTC = b"Photoshop 3.0\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_PNG_PLACE_TEXT = (b"xml:com.adobe.xmp", b"raw profile type exif", b"raw profile type xmp", b"raw profile type iptc",
                   b"raw profile type app1", b"raw profile type 8bim")  # lower case; text chunks named so hold metadata
_WEBP_XMP_FLAG = 0x04  # in the VP8X chunk's flags: "the file has an XMP chunk"
_PLACE_TAGS = frozenset({700, 33723, 34377})  # TIFF tags: XMP, IPTC, Photoshop
_PLACE_KEYS = ("xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "Raw profile type iptc", "Raw profile type xmp")


def without_location(data: bytes) -> bytes | None:
    """The photo without location data, the same bytes when there is nothing to drop, or None when it cannot be made safe."""
    if data.startswith(b"\xff\xd8"):
        served = _jpeg_without_location(data)
    elif data.startswith(_PNG_SIGNATURE):
        served = _png_without_location(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        served = _webp_without_location(data)
    else:
        served = data
    if served is None or _gps_in_any_exif(served):
        return None
    return served if served.startswith(b"\xff\xd8") or not _has_location(served) else None  # as Pillow reads it


def _jpeg_without_location(data: bytes) -> bytes | None:
    """Walk the segments and scans to the end of the image; rewrite or drop the segments that can hold a place,
    and drop whatever follows the end."""
    kept = [data[:2]]
    position, changed, index_of_others = 2, False, None
    while True:
        if position == len(data):  # no end marker: a truncated image, kept as it is
            break
        if position + 2 > len(data) or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == _EOI:
            kept.append(data[position : position + 2])
            position += 2
            break
        if marker in _STANDALONE or marker == _SOI:
            kept.append(data[position : position + 2])
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(data):
            return None
        payload = data[position + 4 : end]
        if marker == _SOS:  # the scan's compressed data runs to the next marker: copied as it is
            found = _MARKER_AFTER_SCAN.search(data, end)
            end = found.start() if found else len(data)
            kept.append(data[position:end])
        elif marker == _APP1 and payload.startswith(_EXIF):
            exif = _exif_without_gps(payload)
            if exif is None:
                return None
            changed |= exif != payload
            kept.append(data[position : position + 4] + exif)
        elif (marker == _APP1 and payload.startswith(_XMP)) or (marker == _APP13 and payload.startswith(_IPTC)):
            changed = True
        else:
            if marker == _APP2 and payload.startswith(_MPF):
                index_of_others = len(kept)
            kept.append(data[position:end])
        position = end
    if position < len(data):  # after the end: a motion photo's video, other pictures, anything
        changed = True
        if index_of_others is not None:
            kept[index_of_others] = b""
    return b"".join(kept) if changed else data


def _png_without_location(data: bytes) -> bytes | None:
    """Walk the chunks: rewrite eXIf without GPS, drop XMP and raw-profile text chunks; the rest as it is."""
    kept = [data[:8]]
    position, changed = 8, False
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind, end = data[position + 4 : position + 8], position + 12 + length
        if position + 12 > len(data) or end > len(data):
            return None
        payload = data[position + 8 : end - 4]
        if kind == b"eXIf":
            exif = _exif_without_gps(payload)
            if exif is None:
                return None
            changed |= exif != payload
            kept.append(len(exif).to_bytes(4, "big") + kind + exif + zlib.crc32(kind + exif).to_bytes(4, "big"))
        elif kind in _PNG_TEXT and payload.partition(b"\x00")[0].lower() in _PNG_PLACE_TEXT:
            changed = True
        else:
            kept.append(data[position:end])
        position = end
        if kind == b"IEND":
            changed |= position < len(data)  # whatever follows the end is dropped
            break
    return b"".join(kept) if changed else data


def _webp_without_location(data: bytes) -> bytes | None:
    """Walk the RIFF chunks: rewrite EXIF without GPS, drop XMP (and its flag in VP8X); the rest as it is."""
    kept: list[bytes] = []
    position, dropped_xmp = 12, False
    stop = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    changed = stop < len(data)  # whatever follows the RIFF file is dropped
    while position < stop:
        kind, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        if position + 8 > stop or position + 8 + size > stop:
            return None
        payload, end = data[position + 8 : position + 8 + size], min(stop, position + 8 + size + (size & 1))
        if kind == b"EXIF":
            exif = _exif_without_gps(payload)
            if exif is None:
                return None
            changed |= exif != payload
            kept.append(kind + len(exif).to_bytes(4, "little") + exif + b"\x00" * (len(exif) & 1))
        elif kind == b"XMP ":
            changed = dropped_xmp = True
        else:
            kept.append(data[position:end])
        position = end
    if not changed:
        return data
    body = b"".join(kept)
    if dropped_xmp and body.startswith(b"VP8X") and len(body) > 8:
        body = body[:8] + bytes([body[8] & ~_WEBP_XMP_FLAG]) + body[9:]
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + body


def _exif_without_gps(payload: bytes) -> bytes | None:
    """EXIF data less every GPS block, of the same length; None when it cannot be walked.

    A JPEG segment starts with "Exif" and two zero bytes, PNG and WebP chunks
    may not: the answer keeps the payload's form.
    """
    prefix = _EXIF if payload.startswith(_EXIF) else b""
    stripped = without_gps(payload[len(prefix) :])
    return None if stripped is None else prefix + stripped


def _gps_in_any_exif(data: bytes) -> bool:
    """Whether an EXIF block anywhere in `data` (a thumbnail's own, say) still points to GPS."""
    position = data.find(_EXIF)
    while position >= 0:
        if has_gps(data[position + len(_EXIF) : position + 0x10000]):
            return True
        position = data.find(_EXIF, position + 1)
    return False


def _has_location(data: bytes) -> bool:
    """Whether a non-JPEG photo carries a block that can hold a place; True when it cannot be read to tell."""
    tiff = as_tiff(data)
    if tiff is not None and has_gps(tiff):  # a TIFF file (a RAW made like one too) is itself the EXIF structure
        return True
    register_decoders()  # HEIC/HEIF and JPEG XL
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            raw_exif = image.info.get("exif")
            info_keys = {key.lower() for key in image.info if isinstance(key, str)}
            tags = set(getattr(image, "tag_v2", {}) or {})
    except UnidentifiedImageError:
        return _raw_has_location(tiff)
    except (OSError, ValueError, SyntaxError, RuntimeError):  # RuntimeError: the JPEG XL plugin's
        return True
    if isinstance(raw_exif, bytes) and has_gps(raw_exif.removeprefix(_EXIF)):
        return True
    return ExifTags.IFD.GPSInfo in exif or any(key.lower() in info_keys for key in _PLACE_KEYS) or bool(tags & _PLACE_TAGS)


def _raw_has_location(tiff: bytes | None) -> bool:
    """A camera RAW Pillow cannot open, as its TIFF structure (GPS already looked for): XMP or IPTC in its first IFD?

    True when it is not TIFF inside (CR3, RAF, or not a photo at all) or cannot be read: withheld rather than leaked.
    """
    if tiff is None:
        return True
    try:
        exif = Image.Exif()
        exif.load(tiff)
    except Exception:  # noqa: BLE001 - damaged
        return True
    return bool(set(exif) & _PLACE_TAGS)
