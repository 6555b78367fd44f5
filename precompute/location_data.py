"""Originals as served or published: as they are on disk, without their location data, or not at all.

One owner for both places an original leaves this machine: the web app
(LOOKALIKE_ORIGINALS) and `python -m precompute.publish --originals`. It needs
only Pillow, so the web app imports it without torch.

`stripped`, the default, removes what can say where a photo was taken, in
the served copy only; the file on disk is never touched:
- JPEG, PNG and WebP: the EXIF GPS block is dropped from the EXIF data
  (camera, date and orientation stay), and XMP and IPTC (Photoshop) blocks,
  which can hold places, are dropped whole. The compressed pixels are copied
  byte for byte, never re-encoded.
- Other formats (TIFF, GIF, BMP, HEIC/HEIF, AVIF, JPEG XL and camera RAW)
  are served as they are when they carry no EXIF GPS, XMP or IPTC block,
  and withheld when they do: rewriting them could re-encode them (or, for
  HEIC and RAW, means rewriting a container whose offsets point everywhere),
  and serving them would give the place away. A file Pillow cannot read the
  metadata of (the RAW formats that are not TIFF inside: CR3, RAF, ORF, RW2)
  is withheld, as is one with an EXIF GPS block anywhere inside (a preview
  picture's, say). The web app shows these formats as a JPEG made without
  any metadata (app/renditions.py).
"""

from __future__ import annotations

import io
import zlib

from PIL import ExifTags, Image, UnidentifiedImageError

from precompute.formats import as_tiff, register_decoders

MODES = ("as-is", "stripped", "off")
DEFAULT_MODE = "stripped"

_SOI, _SOS, _EOI, _APP1, _APP13 = 0xD8, 0xDA, 0xD9, 0xE1, 0xED
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_EXIF = b"Exif\x00\x00"
_XMP = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_IPTC = b"Photoshop 3.0\x00"
_GPS = ExifTags.IFD.GPSInfo
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_PNG_PLACE_TEXT = (b"xml:com.adobe.xmp", b"raw profile type exif", b"raw profile type xmp", b"raw profile type iptc",
                   b"raw profile type app1", b"raw profile type 8bim")  # lower case; text chunks named so hold metadata
_WEBP_XMP_FLAG = 0x04  # in the VP8X chunk's flags: "the file has an XMP chunk"
_PLACE_TAGS = frozenset({700, 33723, 34377})  # TIFF tags: XMP, IPTC, Photoshop
_PLACE_KEYS = ("xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "Raw profile type iptc", "Raw profile type xmp")


def without_location(data: bytes) -> bytes | None:
    """The photo without location data, the same bytes when it has none, or None when it cannot be made safe."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg_without_location(data)
    if data.startswith(_PNG_SIGNATURE):
        served = _png_without_location(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        served = _webp_without_location(data)
    else:
        served = data
        if _embedded_gps(data, 0):  # a RAW's preview, a HEIC's EXIF item: anywhere in a file served as it is
            return None
    return None if served is None or _has_location(served) else served  # checked again, as Pillow reads it


def _jpeg_without_location(data: bytes) -> bytes | None:
    """Walk the segments before the image data; rewrite or drop those that can hold a place."""
    kept = [data[:2]]
    position, changed = 2, False
    while True:
        if position + 2 > len(data) or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (_SOS, _EOI):  # the rest is the image itself: copied as it is
            if _embedded_gps(data, position):
                return None
            kept.append(data[position:])
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
        if marker == _APP1 and payload.startswith(_EXIF):
            exif = _exif_without_gps(payload)
            if exif is None or len(exif) + 2 > 0xFFFF:
                return None
            changed |= exif != payload
            kept.append(b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif)
        elif (marker == _APP1 and payload.startswith(_XMP)) or (marker == _APP13 and payload.startswith(_IPTC)):
            changed = True
        else:
            kept.append(data[position:end])
        position = end
    return b"".join(kept) if changed else data


def _embedded_gps(data: bytes, start: int) -> bool:
    """Whether an image embedded after the main one (a multi-picture JPEG's second frame, say) has a GPS block."""
    position = data.find(_EXIF, start)
    while position >= 0:
        exif = Image.Exif()
        try:
            exif.load(data[position : position + 0x10000])
        except Exception:  # noqa: BLE001 - not EXIF after all: the bytes merely spelled it
            pass
        if _GPS in exif:
            return True
        position = data.find(_EXIF, position + 1)
    return False


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
            kept.append(data[position:])
            break
    return b"".join(kept) if changed else data


def _webp_without_location(data: bytes) -> bytes | None:
    """Walk the RIFF chunks: rewrite EXIF without GPS, drop XMP (and its flag in VP8X); the rest as it is."""
    kept: list[bytes] = []
    position, changed, dropped_xmp = 12, False, False
    while position < len(data):
        kind, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        if position + 8 > len(data) or position + 8 + size > len(data):
            return None
        payload, end = data[position + 8 : position + 8 + size], position + 8 + size + (size & 1)
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
    """EXIF data less its GPS block (and the embedded preview thumbnail Pillow drops with it).

    A JPEG segment starts with "Exif" and two zero bytes, PNG and WebP chunks
    may not: the answer keeps the payload's form.
    """
    try:
        exif = Image.Exif()
        exif.load(payload)
        if _GPS not in exif:
            return payload
        del exif[_GPS]  # without reading the block first: Pillow would write back a block it has read
        rewritten = exif.tobytes()
        if not payload.startswith(_EXIF):
            rewritten = rewritten.removeprefix(_EXIF)
        check = Image.Exif()
        check.load(rewritten)
    except Exception:  # noqa: BLE001 - a damaged EXIF block of any kind: withhold rather than leak
        return None
    return rewritten if _GPS not in check else None


def _has_location(data: bytes) -> bool:
    """Whether a non-JPEG photo carries a block that can hold a place; True when it cannot be read to tell."""
    register_decoders()  # HEIC/HEIF and JPEG XL
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            info_keys = {key.lower() for key in image.info if isinstance(key, str)}
            tags = set(getattr(image, "tag_v2", {}) or {})
    except UnidentifiedImageError:
        return _raw_has_location(data)
    except (OSError, ValueError, SyntaxError, RuntimeError):  # RuntimeError: JPEG XL's plugin
        return True
    return _GPS in exif or any(key.lower() in info_keys for key in _PLACE_KEYS) or bool(tags & _PLACE_TAGS)


def _raw_has_location(data: bytes) -> bool:
    """A camera RAW Pillow cannot open: its TIFF structure's first directory read for GPS, XMP and IPTC; True if it has none to read."""
    tiff = as_tiff(data)
    if tiff is None:  # CR3, RAF, or not a photo at all
        return True
    try:
        exif = Image.Exif()
        exif.load(tiff)
        return _GPS in exif or bool(set(exif) & _PLACE_TAGS)
    except Exception:  # noqa: BLE001 - damaged: withhold rather than leak
        return True
