"""Originals as served: as they are on disk, without their location data, or not at all (LOOKALIKE_ORIGINALS).

`stripped`, the default, removes what can say where a photo was taken, in
the served copy only; the file on disk is never touched:
- JPEG: the EXIF GPS block is dropped from the EXIF segment (camera, date
  and orientation stay), and the XMP and IPTC (Photoshop) segments, which
  can hold places, are dropped whole. The compressed pixels are copied byte
  for byte, never re-encoded.
- Other formats are served as they are when they carry no EXIF GPS, XMP or
  IPTC block, and withheld when they do: rewriting them could re-encode
  them, and serving them would give the place away.
"""

from __future__ import annotations

import io

from PIL import ExifTags, Image, UnidentifiedImageError

MODES = ("as-is", "stripped", "off")
DEFAULT_MODE = "stripped"

_SOI, _SOS, _EOI, _APP1, _APP13 = 0xD8, 0xDA, 0xD9, 0xE1, 0xED
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_EXIF = b"Exif\x00\x00"
_XMP = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_IPTC = b"Photoshop 3.0\x00"
_GPS = ExifTags.IFD.GPSInfo
_PLACE_KEYS = ("xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "Raw profile type iptc", "Raw profile type xmp")


def without_location(data: bytes) -> bytes | None:
    """The photo without location data, the same bytes when it has none, or None when it cannot be made safe."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg_without_location(data)
    return None if _has_location(data) else data


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


def _exif_without_gps(payload: bytes) -> bytes | None:
    """The EXIF segment's payload less its GPS block (and the embedded preview thumbnail Pillow drops with it)."""
    try:
        exif = Image.Exif()
        exif.load(payload)
        if _GPS not in exif:
            return payload
        del exif[_GPS]  # without reading the block first: Pillow would write back a block it has read
        rewritten = exif.tobytes()
        check = Image.Exif()
        check.load(rewritten)
    except Exception:  # noqa: BLE001 - a damaged EXIF block of any kind: withhold rather than leak
        return None
    return rewritten if _GPS not in check else None


def _has_location(data: bytes) -> bool:
    """Whether a non-JPEG photo carries a block that can hold a place; True when it cannot be read to tell."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            info_keys = {key.lower() for key in image.info if isinstance(key, str)}
            tags = set(getattr(image, "tag_v2", {}) or {})
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return True
    return _GPS in exif or any(key.lower() in info_keys for key in _PLACE_KEYS) or bool(tags & {700, 33723, 34377})
