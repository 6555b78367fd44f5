"""The scan count of a JPEG, read before decoding it: a progressive JPEG costs one pass over the image per scan.

libjpeg walks every block of the image once for each scan (SOS segment), at
whatever reduced size it is asked to decode, and a scan can be ten bytes: a
200 KB 6000 × 6000 progressive JPEG of 20,000 empty scans held a search
worker for 31 s while passing the pixel limit. So the scans are counted
first, by walking the marker segments (and skipping each scan's
entropy-coded data to the next marker), and a file past MAX_SCANS is
refused.

MAX_SCANS: libjpeg's and Pillow's progressive encoders write 10 scans for a
colour photo (6 for grey, 18 for CMYK), jpegtran and mozjpeg's optimised
scripts a few more; a baseline JPEG has one scan per component at most. 100
leaves a tenfold margin and bounds the decode to 100 passes over a picture
whose pixels are capped already. Needs only the standard library, so the web
app checks uploads with it without torch.
"""

from __future__ import annotations

import re

MAX_SCANS = 100

_SOI, _SOS, _EOI = 0xD8, 0xDA, 0xD9
_STANDALONE = {0x01, _SOI, *range(0xD0, 0xD8)}  # TEM, SOI and RSTn carry no length
# The next marker after a scan's entropy-coded data: 0xFF and a byte that is not a stuffed zero, a restart
# marker (which belong to the data) or another 0xFF (a fill byte: the match starts at the last one). Starting
# with a literal byte, the pattern is searched for at C speed.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")


class TooManyScans(ValueError):
    """A JPEG with more scans than MAX_SCANS; the message says how many were counted."""


def scan_count(data: bytes, stop_after: int = MAX_SCANS) -> int:
    """The SOS segments of the JPEG in `data` before its end (EOI), counting no further than `stop_after` + 1.

    Not a JPEG, or a damaged one: the scans counted until the damage (the decoder says what is wrong).
    """
    if not data.startswith(b"\xff\xd8"):
        return 0
    position, scans = 2, 0
    while position + 2 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte
            position += 1
            continue
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == _SOS:
            scans += 1
            if scans > stop_after:
                break
            found = _NEXT_MARKER.search(data, position)
            if found is None:
                break
            position = found.start()
    return scans


def check_scan_count(data: bytes) -> None:
    """Raise TooManyScans for a JPEG of more than MAX_SCANS scans; anything else passes."""
    if scan_count(data) > MAX_SCANS:
        raise TooManyScans(
            f"a JPEG of over {MAX_SCANS} scans (progressive photos have about 10); each scan costs a pass "
            "over the whole image, so it was not decoded (a possible scan bomb)"
        )
