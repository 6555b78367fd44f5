"""Which objects an index's media are in a bucket, and what each one holds: the object-name contract.

- thumbnails and previews: `PREFIX/<thumbnail file name>`, the flat
  content-hash names of the thumbnail folder, so `LOOKALIKE_MEDIA_URL` + the
  file name is the object. Their bytes never change under a name, so they are
  cached for a year, `immutable`;
- originals: `PREFIX/originals/<the photo's path>`, so the app's
  LOOKALIKE_ORIGINALS_URL (media URL + `originals/`) + the URL-quoted path is
  the object. A path keeps its name when the photo is edited, so they are
  cached for a day, as the app serves them.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from core.location_data import without_location

IMMUTABLE = "public, max-age=31536000, immutable"
ORIGINAL_CACHE = "public, max-age=86400"
ORIGINALS_FOLDER = "originals/"


class Withheld(Exception):
    """This object must not be published (its location data cannot be removed, its name cannot be a key)."""


@dataclass(frozen=True)
class MediaObject:
    """One object to publish: its name under the prefix and where its bytes come from."""

    name: str
    source: Path
    content_type: str
    cache_control: str
    strip_location: bool = False

    def read(self) -> bytes:
        """The bytes to publish; OSError if the file cannot be read, Withheld if it must not be published."""
        data = self.source.read_bytes()
        if not self.strip_location:
            return data
        stripped = without_location(data)
        if stripped is None:
            raise Withheld("it carries location data that cannot be removed without re-encoding it "
                           "(publish with --originals as-is to send it anyway)")
        return stripped


def thumbnail_objects(index: dict, index_path: Path) -> list[MediaObject]:
    """Every thumbnail and preview file the index names, once each (duplicate photos share theirs)."""
    folder = Path(index_path).parent / index["thumbnail_dir"]
    names = {entry["file"] for photo in index["photos"] for entry in photo["thumbnails"].values()}
    return [MediaObject(name, folder / name, "image/jpeg", IMMUTABLE) for name in sorted(names)]


def original_objects(index: dict, photo_root: Path, strip_location: bool) -> tuple[list[MediaObject], list[tuple[str, str]]]:
    """Every photo's original, and (path, reason) for those whose name cannot be an S3 key."""
    objects, withheld = [], []
    for row in range(len(index["photos"])):
        path = index["photos"].path(row)
        name = ORIGINALS_FOLDER + path
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # kept through surrogateescape by the index
            withheld.append((name, "its file name is not valid UTF-8, which an S3 key must be"))
            continue
        content_type = mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
        objects.append(MediaObject(name, photo_root / path, content_type, ORIGINAL_CACHE, strip_location))
    return objects, withheld


def default_photo_root(index: dict, index_path: Path) -> Path:
    """The folder the index was built from, as it recorded it (relative to the index's folder if relative)."""
    return Path(index_path).parent / index["photo_root"]

