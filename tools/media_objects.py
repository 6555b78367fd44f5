"""Which objects an index's media are in a bucket, and what each one holds: the object-name contract.

- thumbnails and previews: `PREFIX/<thumbnail file name>`, the flat
  content-hash names of the thumbnail folder, so `LOOKALIKE_MEDIA_URL` + the
  file name is the object. Their bytes never change under a name, so they are
  cached for a year, `immutable`;
- originals: `PREFIX/originals/<the photo's path>`, so the app's
  LOOKALIKE_ORIGINALS_URL (media URL + `originals/`) + the URL-quoted path is
  the object. A path keeps its name when the photo is edited, so they are
  cached for a day, as the app serves them.

Each file is read as the web app reads it (`core.indexed_files`): only
a regular file inside its folder, never through a link out of it; an
original must also still be the file indexed (its size and time as
recorded). Any other is withheld, with the reason, never uploaded.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from core.index_file import Index
from core.indexed_files import changed_since_indexed, open_inside
from core.location_data import without_location
from core.served_type import DOWNLOAD_TYPE, image_type

IMMUTABLE = "public, max-age=31536000, immutable"
ORIGINAL_CACHE = "public, max-age=86400"
ORIGINALS_FOLDER = "originals/"


class Withheld(Exception):
    """This object must not be published (its location data cannot be removed, its name cannot be a key,
    its file is not the one indexed or not inside its folder)."""


@dataclass(frozen=True)
class MediaObject:
    """One object to publish: its name under the prefix and where its bytes come from."""

    name: str
    folder: Path  # resolved: the file must be inside it, as opened
    relative: str  # the file's path in `folder`
    content_type: str | None  # None: the image type found in the bytes, as the app serves originals
    cache_control: str
    strip_location: bool = False
    indexed: tuple[int, int] | None = None  # (size, mtime_ns) the index recorded: the file must still be that one

    @property
    def source(self) -> Path:
        return self.folder / self.relative

    def read(self) -> bytes:
        """The bytes to publish; OSError if the file cannot be read, Withheld if it must not be published."""
        file = open_inside(self.folder, self.relative)
        if file is None:
            raise self._why_not_opened()
        with file:
            if self.indexed is not None and changed_since_indexed(os.fstat(file.fileno()), *self.indexed):
                raise Withheld("it changed since it was indexed (its size or time differ): "
                               "run python -m precompute again first")
            data = file.read()
        if not self.strip_location:
            return data
        stripped = without_location(data)
        if stripped is None:
            raise Withheld("it carries location data that cannot be removed without re-encoding it "
                           "(publish with --originals as-is to send it anyway)")
        return stripped

    def served_as(self, data: bytes) -> str:
        """The object's Content-Type: an original's comes from what the decoder finds in it, never its name,
        so `evil.html` holding a GIF and a script is stored as `image/gif`, and a non-image as a download."""
        return self.content_type or image_type(io.BytesIO(data)) or DOWNLOAD_TYPE

    def _why_not_opened(self) -> Exception:
        """Withheld where the rule refused the file, the OSError where it cannot be read at all (gone, say)."""
        try:
            info = os.stat(self.source)
        except OSError as err:
            return err
        if not Path(os.path.realpath(self.source)).is_relative_to(self.folder):
            return Withheld(f"it leads out of {self.folder} (a link, say)")
        if not stat.S_ISREG(info.st_mode):
            return Withheld("it is not a regular file")
        return OSError(f"it cannot be opened as a file inside {self.folder}")


def thumbnail_objects(index: Index, index_path: Path) -> list[MediaObject]:
    """Every thumbnail and preview file the index names, once each (duplicate photos share theirs)."""
    folder = (Path(index_path).parent / index.thumbnail_dir).resolve()
    names = {entry["file"] for photo in index.photos for entry in photo["thumbnails"].values()}
    return [MediaObject(name, folder, name, "image/jpeg", IMMUTABLE) for name in sorted(names)]


def original_objects(index: Index, photo_root: Path, strip_location: bool) -> tuple[list[MediaObject], list[tuple[str, str]]]:
    """Every photo's original, and (path, reason) for those whose name cannot be an S3 key."""
    objects, withheld = [], []
    photos, folder = index.photos, Path(photo_root).resolve()
    sizes, times = photos.columns["size"].tolist(), photos.columns["mtime_ns"].tolist()
    for row in range(len(photos)):
        path = photos.path(row)
        name = ORIGINALS_FOLDER + path
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # kept through surrogateescape by the index
            withheld.append((name, "its file name is not valid UTF-8, which an S3 key must be"))
            continue
        objects.append(MediaObject(name, folder, path, None, ORIGINAL_CACHE, strip_location,
                                   (sizes[row], times[row])))
    return objects, withheld


def default_photo_root(index: Index, index_path: Path) -> Path:
    """The folder the index was built from, as it recorded it (relative to the index's folder if relative)."""
    return Path(index_path).parent / index.photo_root

