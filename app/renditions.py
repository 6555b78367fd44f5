"""A full-size JPEG to view an original that browsers cannot show (HEIC, camera RAW, TIFF, JPEG XL).

The photo page links it beside the original, which is then a download. It is
decoded by the indexing pipeline's own decoder (`precompute.query`: upright,
every colour mode to RGB) and re-encoded with no metadata at all, so it never
carries a location whatever LOOKALIKE_ORIGINALS says. A RAW file gives the
camera's embedded JPEG when that is full size, else its sensor data
demosaiced at half size. Each worker makes one at a time (more get a 503):
a 48-megapixel photo takes about 150 MB of memory while it is made.
"""

from __future__ import annotations

import io
import threading

QUALITY = 90
_SLOT = threading.BoundedSemaphore(1)


class RenditionBusy(Exception):
    """This worker is already making a rendition."""


class RenditionFailed(Exception):
    """The original cannot be decoded; the message says why."""


def full_size_jpeg(data: bytes, name: str) -> bytes:
    """The original's pixels, upright and full size, as a JPEG without metadata. Raises RenditionBusy or RenditionFailed."""
    from precompute.query import UnreadablePhoto, full_size_picture  # imported on the first rendition, not at start

    if not _SLOT.acquire(blocking=False):
        raise RenditionBusy("The server is making another full-size view; try again in a moment.")
    try:
        try:
            picture = full_size_picture(data, name)
        except UnreadablePhoto as err:
            raise RenditionFailed(str(err)) from None
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=QUALITY)
        return out.getvalue()
    finally:
        _SLOT.release()

