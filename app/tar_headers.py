"""A tar stream whose headers are checked as they pass, before `tarfile` reads what they announce.

`tarfile` reads a GNU long-name or long-link header ('L', 'K') and a pax
header ('x', 'g', 'X') whole into memory, whatever size it states, before any
cap on members applies: a 255 kB archive can ask for gigabytes. Before the
fix of CVE-2024-6232 it also parsed pax headers in quadratic time. So every
byte `tarfile` reads passes through `CheckedTarStream` first, which walks the
512-byte header blocks itself and stops the stream, before the bytes behind
a header are read, at:
- a special header over SPECIAL_HEADER_LIMIT bytes (a long name needs at
  most a few kB: PATH_MAX is 4,096);
- a pax header whose records are malformed, that holds a run of over
  _DIGIT_RUN digits (the quadratic case), that sets a size (only files over
  8 GiB need one) or describes a sparse file;
- a GNU sparse member, a negative size, or a damaged header.
The stream ends at the first all-zero block, as `tarfile` does.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from typing import BinaryIO

SPECIAL_HEADER_LIMIT = 8192
_DIGIT_RUN = 64
_BLOCK = tarfile.BLOCKSIZE
_MAX_READ = 1 << 20
_SPECIAL = {
    tarfile.GNUTYPE_LONGNAME: "GNU long-name",
    tarfile.GNUTYPE_LONGLINK: "GNU long-link",
    tarfile.XHDTYPE: "pax",
    tarfile.XGLTYPE: "pax global",
    tarfile.SOLARIS_XHDTYPE: "Solaris pax",
}
_PAX = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_LONG_DIGIT_RUN = re.compile(rb"\d{%d}" % (_DIGIT_RUN + 1))


class TarRefused(Exception):
    """A header the stream will not pass on to `tarfile`; the message says which and why."""


class CheckedTarStream:
    """A file object over an uncompressed tar stream for `tarfile.open(fileobj=..., mode="r|")`.

    `on_read(total)` is called with the bytes passed so far after each read,
    so the caller can cap the whole stream (headers included) and its time.
    """

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._raw, self._on_read = raw, on_read
        self._passed = 0  # bytes handed on, and walked
        self._pending = bytearray()  # a header block, or a special header's data, being gathered
        self._wanted = _BLOCK  # how many bytes `_pending` must hold before it is checked
        self._special: tuple[str, int, int] | None = None  # type, size and offset of the special header being gathered
        self._skip = 0  # member data to pass over
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size if 0 <= size <= _MAX_READ else _MAX_READ)
        if not self._ended:
            self._walk(chunk)
        self._passed += len(chunk)
        self._on_read(self._passed)
        return chunk

    def _walk(self, chunk: bytes) -> None:
        position = 0
        while position < len(chunk) and not self._ended:
            if self._skip:
                step = min(self._skip, len(chunk) - position)
                self._skip -= step
                position += step
                continue
            step = min(self._wanted - len(self._pending), len(chunk) - position)
            self._pending += chunk[position : position + step]
            position += step
            if len(self._pending) == self._wanted:
                self._gathered(bytes(self._pending), self._passed + position)

    def _gathered(self, data: bytes, end: int) -> None:
        self._pending.clear()
        if self._special is not None:
            kind, size, offset = self._special
            self._special, self._wanted = None, _BLOCK
            if kind in _PAX:
                _check_pax(data[:size], offset)
            return
        self._header(data, end - _BLOCK)

    def _header(self, block: bytes, offset: int) -> None:
        try:
            member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.EOFHeaderError:  # the end-of-archive marker: tarfile reads no further either
            self._ended = True
            return
        except tarfile.HeaderError as err:
            raise TarRefused(f"a damaged header at byte {offset:,} ({err})") from None
        if member.size < 0:
            raise TarRefused(f"a header at byte {offset:,} gives a negative size")
        if member.type == tarfile.GNUTYPE_SPARSE:
            raise TarRefused(f"a sparse member at byte {offset:,} (an index archive has none)")
        kind = _SPECIAL.get(member.type)
        if kind is None:  # data follows only where tarfile skips it: regular files and unknown types
            if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES:
                self._skip = -(-member.size // _BLOCK) * _BLOCK
            return
        if member.size > SPECIAL_HEADER_LIMIT:
            raise TarRefused(f"a {kind} header of {member.size:,} bytes at byte {offset:,}; "
                             f"a real one needs far fewer than {SPECIAL_HEADER_LIMIT:,}")
        self._special = (member.type, member.size, offset)
        self._wanted = -(-member.size // _BLOCK) * _BLOCK
        if self._wanted == 0:
            self._gathered(b"", offset + _BLOCK)


def _check_pax(records: bytes, offset: int) -> None:
    """Each record `LENGTH KEYWORD=VALUE\\n`, checked in one linear pass; refused where tarfile could stumble."""
    where = f"a pax header at byte {offset:,}"
    if _LONG_DIGIT_RUN.search(records):
        raise TarRefused(f"{where} with a run of over {_DIGIT_RUN} digits (CVE-2024-6232's slow case)")
    position = 0
    while position < len(records):
        space = records.find(b" ", position, position + 21)
        digits = records[position:space]
        if space < 0 or not digits.isdigit():
            raise TarRefused(f"{where} with a malformed record")
        end = position + int(digits)
        keyword, equals, _ = records[space + 1 : end - 1].partition(b"=")
        if end > len(records) or records[end - 1 : end] != b"\n" or not equals or not keyword:
            raise TarRefused(f"{where} with a malformed record")
        if keyword == b"size" or keyword.startswith(b"GNU.sparse."):
            raise TarRefused(f"{where} that sets {keyword.decode('ascii', 'replace')!r}, which an index archive never needs")
        position = end
