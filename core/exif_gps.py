"""GPS blocks found wherever an EXIF (TIFF) structure points to them, and removed in place.

Any IFD can point to a GPS block with tag 0x8825: IFD0, where cameras put
it, but also IFD1 (the thumbnail's), the Exif sub-IFD, the Interoperability
IFD, SubIFDs, or an IFD further along a chain, and readers such as exiftool
follow them all. So the walk follows every IFD pointer that lands inside the
data (one that lands outside points at nothing the file holds).

Removal changes no offset: the pointer's entry is taken out of its IFD (the
entries after it move up, the freed 12 bytes are zeroed) and the GPS block
(its entries and the values they point to) is zeroed. Everything else, the
thumbnail and the maker notes included, stays byte for byte, and the data
keeps its length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

GPS_POINTER = 0x8825
_SUB_IFD_POINTERS = (0x8769, 0xA005)  # the Exif sub-IFD, the Interoperability IFD
_SUB_IFDS = 0x014A  # an array of IFD offsets
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_MAX_IFDS = 256  # more than any camera writes; past it the data is refused rather than half walked
_MAX_SUB_IFDS = 64
_BYTE_ORDERS = {b"II*\x00": "<", b"MM\x00*": ">"}


class ExifUnreadable(Exception):
    """Not a TIFF structure that can be walked to the end: nothing can be said about its GPS."""


def has_gps(tiff: bytes) -> bool:
    """Whether `tiff` (EXIF data from its TIFF header on, or a whole TIFF file) points to a GPS block anywhere."""
    try:
        return next(_gps_pointers(tiff, _byte_order(tiff)), None) is not None
    except ExifUnreadable:
        return False


def without_gps(tiff: bytes) -> bytes | None:
    """`tiff` with every GPS block and the pointers to it removed (the same bytes if it has none), or None when
    it cannot be walked. Data too short to hold an IFD holds no GPS and is returned as it is."""
    if len(tiff) < 8:
        return tiff
    try:
        order = _byte_order(tiff)
        if next(_gps_pointers(tiff, order), None) is None:
            return tiff
        data = bytearray(tiff)
        for _ in range(_MAX_IFDS):
            found = next(_gps_pointers(data, order), None)
            if found is None:
                return bytes(data)
            _remove(data, order, *found)
    except ExifUnreadable:
        pass
    return None


def _byte_order(tiff: bytes) -> str:
    order = _BYTE_ORDERS.get(bytes(tiff[:4]))
    if order is None:
        raise ExifUnreadable("no TIFF header")
    return order


def _gps_pointers(data: bytes, order: str) -> Iterator[tuple[int, int, int]]:
    """(IFD offset, its entry count, index of the entry) of each GPS pointer, IFD by IFD."""
    pending, seen = [_u32(data, order, 4)], set()
    while pending:
        ifd = pending.pop()
        if ifd in seen or not 0 < ifd <= len(data) - 2:
            continue
        seen.add(ifd)
        if len(seen) > _MAX_IFDS:
            raise ExifUnreadable("too many IFDs")
        count = _u16(data, order, ifd)
        for index in range(min(count, (len(data) - ifd - 2) // 12)):  # a truncated IFD: the entries that are there
            at = ifd + 2 + 12 * index
            tag, kind, n = struct.unpack_from(order + "HHI", data, at)
            if tag == GPS_POINTER:
                yield ifd, count, index
            elif tag in _SUB_IFD_POINTERS:
                pending.append(_u32(data, order, at + 8))
            elif tag == _SUB_IFDS:
                base = at + 8 if n <= 1 else _u32(data, order, at + 8)
                pending += [_u32(data, order, base + 4 * i) for i in range(min(n, _MAX_SUB_IFDS))
                            if base + 4 * i + 4 <= len(data)]
        following = ifd + 2 + 12 * count  # the next IFD in the chain, from any IFD: readers follow it
        if following + 4 <= len(data):
            pending.append(_u32(data, order, following))


def _remove(data: bytearray, order: str, ifd: int, count: int, index: int) -> None:
    """Zero the GPS block entry `index` of the IFD at `ifd` points to, then take the entry out of the IFD."""
    at = ifd + 2 + 12 * index
    _zero_ifd(data, order, _u32(data, order, at + 8))
    end = min(len(data), ifd + 2 + 12 * count + 4)  # the entries after it and the next-IFD offset move up
    data[at:end] = (data[at + 12 : end] + bytes(12))[: end - at]
    data[ifd : ifd + 2] = struct.pack(order + "H", count - 1)


def _zero_ifd(data: bytearray, order: str, ifd: int) -> None:
    if not 0 < ifd <= len(data) - 2:
        return
    count = _u16(data, order, ifd)
    for index in range(min(count, (len(data) - ifd - 2) // 12)):
        at = ifd + 2 + 12 * index
        kind, n = struct.unpack_from(order + "HI", data, at + 2)
        size = n * _TYPE_SIZES.get(kind, 1)
        if size > 4:  # the value is elsewhere, at the offset the entry holds
            start = _u32(data, order, at + 8)
            if start < len(data):
                data[start : min(len(data), start + size)] = bytes(min(len(data), start + size) - start)
    end = min(len(data), ifd + 2 + 12 * count + 4)
    data[ifd:end] = bytes(end - ifd)


def _u16(data: bytes, order: str, at: int) -> int:
    return struct.unpack_from(order + "H", data, at)[0]


def _u32(data: bytes, order: str, at: int) -> int:
    if at + 4 > len(data):
        raise ExifUnreadable("an offset past the end")
    return struct.unpack_from(order + "I", data, at)[0]
