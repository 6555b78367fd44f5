"""A small collection in folders, like a shop's categories, built with the real pipeline; one folder name is not UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.exif_photos import write_exif_photo
from tests.support.tiny_index import write_photo

NOT_UTF8 = os.fsdecode(b"caf\xe9")  # a folder name in Latin-1, as old cameras and Windows shares write them
FILE_TIME_NS = 1_500_000_000 * 10**9  # July 2017, for the photos without EXIF
# relative path: (colour, EXIF DateTimeOriginal or None for the file time)
PHOTOS = {
    "cover.jpg": ((220, 220, 220), "2024:01:01 09:00:00"),
    "shop/sofas/red-sofa.jpg": ((200, 30, 30), "2023:05:01 10:00:00"),
    "shop/sofas/red-sofa-2.jpg": ((190, 40, 35), "2023:05:02 10:00:00"),
    "shop/sofas/blue-sofa.jpg": ((30, 40, 200), None),
    "shop/lamps/red-lamp.jpg": ((205, 35, 30), "2022:12:24 18:00:00"),
    "shop/lamps/green-lamp.jpg": ((30, 190, 40), "2021:03:03 03:03:03"),
    f"{NOT_UTF8}/old.jpg": ((120, 90, 60), None),
}


def write_folder_tree(photos: Path) -> None:
    for relpath, (colour, taken) in PHOTOS.items():
        path = photos / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if taken is None:
            write_photo(path, 400, 300, colour)
            os.utime(path, ns=(FILE_TIME_NS, FILE_TIME_NS))
        else:
            write_exif_photo(path, taken=taken, model="Canon EOS 5D", gps=False, size=(400, 300), colour=colour)


def build_folder_index(root: Path, k: int = 3) -> Path:
    """PHOTOS in root/photos, indexed into root/index.pkl (efficientnet-lite0)."""
    from precompute.build import BuildOptions, build_index

    write_folder_tree(root / "photos")
    index_path = root / "index.pkl"
    build_index(root / "photos", index_path, BuildOptions(model="efficientnet-lite0", k=k, workers=0))
    return index_path
