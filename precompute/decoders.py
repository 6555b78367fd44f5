"""Which decoder reads a photo, chosen by its file's name (`core.formats`).

Camera RAW files go to LibRaw (`raw_decode`), everything else to Pillow
(`decode`). Indexing, search by photo and the web app's full-size view all
decode through here, so each photo is read the same way everywhere.
"""

from __future__ import annotations

from core.formats import is_raw
from precompute.decode import DecodedPhoto, decode_image


def decode_photo(data: bytes, min_shorter: int, min_longer: int, name: str = "") -> DecodedPhoto:
    """An upright RGB picture of the photo, at least `min_shorter` × `min_longer` where it has them.

    `name`, the file's name, picks the decoder; an upload has none, and Pillow
    reads it by its content. Raises DecodeError.
    """
    if is_raw(name):
        from precompute.raw_decode import decode_raw  # rawpy is imported only where RAW files are

        return decode_raw(data, min_shorter, min_longer)
    return decode_image(data, min_shorter, min_longer)
