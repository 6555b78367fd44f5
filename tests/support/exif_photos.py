"""Photos with the EXIF a camera writes (date taken, make and model, a GPS position), made with Pillow in the tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.support.tiny_index import write_photo

GPS_LATITUDE = (48.0, 51.0, 29.5)  # what must never reach the index


def write_exif_photo(
    path: Path, taken: str | None = "2021:06:15 14:30:00", make: str = "Canon", model: str = "Canon EOS 5D",
    gps: bool = True, size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (120, 90, 60),
) -> None:
    """A JPEG like a camera's: DateTimeOriginal in the Exif block, Make and Model, and (with `gps`) a location."""
    write_photo(path, *size, colour)
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: GPS_LATITUDE, 3: "E", 4: (2.0, 17.0, 40.2)})
    with Image.open(path) as image:
        image.load()
        image.save(path, "JPEG", exif=exif)
