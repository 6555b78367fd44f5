"""What type an original is served as: the image type its decoder finds in its bytes, never its file name's.

A file named `evil.html` that is a valid GIF followed by a script is a GIF:
served as `image/gif` it is shown as a picture, never run as a page. A file
the decoder finds no image in is not shown at all: the caller sends it as an
attachment, `application/octet-stream`, with `X-Content-Type-Options: nosniff`.
Needs only Pillow, so the web app (and publishing) can use it without torch.
"""

from __future__ import annotations

import os
import warnings
from typing import BinaryIO

from PIL import Image

DOWNLOAD_TYPE = "application/octet-stream"
# What browsers show inline; any other image (HEIC, TIFF and the RAW files built on it) is offered as a download.
BROWSER_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/avif"})
# Pillow's name for a JPEG holding further pictures (MPF, as phones write) is not one browsers know.
_BROWSER_TYPES = {"MPO": "image/jpeg"}


def image_type(file: BinaryIO) -> str | None:
    """The `image/…` type of the picture Pillow finds in `file` from its header, or None; `file` is rewound."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a header claiming many pixels is still that type; nothing is decoded
            with Image.open(file) as image:  # a file object it did not open: closing the image leaves it open
                kind = _BROWSER_TYPES.get(image.format) or image.get_format_mimetype() or ""
    except Exception:  # noqa: BLE001 - Pillow raises many types for what is not an image it knows
        kind = ""
    finally:
        # Back to the start, the operating system's position too (a server's sendfile starts from it): a seek
        # to the end first, since a seek within what the file object has buffered would move only its own.
        file.seek(0, os.SEEK_END)
        file.seek(0)
    return kind if kind.startswith("image/") and "svg" not in kind else None
