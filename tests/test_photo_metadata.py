"""Date taken, camera and EXIF tag count: read where the photo is decoded, kept as index columns, absent in older indexes."""

from __future__ import annotations

from dataclasses import replace

import io
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.index_file import (
    MAX_CAMERA_CHARS,
    METADATA_KEYS,
    IndexFileError,
    PhotoTable,
    read_index,
    write_index,
)
from precompute.build import BuildOptions, build_index
from precompute.decoders import decode_photo
from precompute.photo_metadata import camera_name, summarise_exif
from tests.support.exif_photos import GPS_LATITUDE, write_exif_photo
from tests.support.index_samples import index_file_bytes, photo_record, valid_index, without_metadata
from tests.support.tiny_index import write_photo

OPTIONS = BuildOptions(model="efficientnet-lite0", k=2, workers=0, batch_size=4)
JUNE_15 = int(datetime(2021, 6, 15, 14, 30, tzinfo=timezone.utc).timestamp())
FILE_TIME_NS = 1_600_000_000_123_456_789


def exif_of(path: Path) -> Image.Exif:
    with Image.open(path) as image:
        return image.getexif()


def test_the_decoder_reads_date_camera_and_tag_count(tmp_path):
    write_exif_photo(tmp_path / "a.jpg")
    decoded = decode_photo((tmp_path / "a.jpg").read_bytes(), 224, 320)
    # Make, Model, the Exif block's DateTimeOriginal, the GPS block's four tags; the two block pointers are not tags.
    assert (decoded.exif.taken, decoded.exif.camera, decoded.exif.tags) == (JUNE_15, "Canon EOS 5D", 7)


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        ("2021:06:15 14:30:00", JUNE_15),
        ("2021-06-15 14:30:00\x00", JUNE_15),
        ("2021:06:15 14:30", JUNE_15),
        ("0000:00:00 00:00:00", None),
        ("2021:02:30 10:00:00", None),
        ("    :  :     :  :  ", None),
        ("yesterday", None),
        ("1200:01:01 00:00:00", None),
    ],
)
def test_odd_dates_are_read_or_left_out(tmp_path, taken, expected):
    write_exif_photo(tmp_path / "a.jpg", taken=taken, gps=False)
    assert summarise_exif(exif_of(tmp_path / "a.jpg")).taken == expected


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        ("Canon", "Canon EOS 5D", "Canon EOS 5D"),
        ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        ("  Fuji\x00film ", "", "Fuji film"),
        ("", "X100V\n\t", "X100V"),
        ("", "", ""),
        (None, b"Pixel 7", "Pixel 7"),
        ("Acme", "M" * 500, "Acme " + "M" * (MAX_CAMERA_CHARS - 5)),
    ],
)
def test_camera_names_are_cleaned_and_bounded(make, model, expected):
    assert camera_name(make, model) == expected


def test_damaged_exif_costs_the_metadata_not_the_photo(tmp_path):
    write_photo(tmp_path / "a.jpg", 64, 48, (10, 20, 30))
    with Image.open(tmp_path / "a.jpg") as image:
        image.load()
        image.save(tmp_path / "a.jpg", exif=b"Exif\x00\x00MM\x00*garbage-garbage")
    with pytest.warns(UserWarning):  # Pillow's own "Corrupt EXIF data"
        decoded = decode_photo((tmp_path / "a.jpg").read_bytes(), 224, 320)
    assert (decoded.exif.taken, decoded.exif.camera, decoded.exif.tags) == (None, "", 0)


@pytest.fixture
def camera_folder(tmp_path: Path) -> Path:
    """Two camera photos (one with a location) and a scan without EXIF, whose date is its file time."""
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    write_exif_photo(photos / "trip" / "beach.jpg")
    write_exif_photo(photos / "trip" / "hill.jpg", taken="2019:01:02 03:04:05", make="Apple", model="iPhone 12", gps=False,
                     colour=(30, 160, 90))
    write_photo(photos / "scan.png", 300, 200, (200, 200, 40))
    os.utime(photos / "scan.png", ns=(FILE_TIME_NS, FILE_TIME_NS))
    return photos


def test_the_pipeline_records_metadata_and_the_round_trip_keeps_it(camera_folder, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(camera_folder, index_path, OPTIONS)
    photos = {photo["path"]: photo for photo in read_index(index_path).photos}
    assert {path: (p["taken"], p["taken_source"], p["camera"], p["exif_tags"]) for path, p in photos.items()} == {
        "scan.png": (FILE_TIME_NS // 10**9, "file", "", 0),
        "trip/beach.jpg": (JUNE_15, "exif", "Canon EOS 5D", 7),
        "trip/hill.jpg": (int(datetime(2019, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()), "exif", "Apple iPhone 12", 3),
    }


def test_no_location_reaches_the_index(camera_folder, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(camera_folder, index_path, OPTIONS)
    data = index_path.read_bytes()
    assert np.array(GPS_LATITUDE).tobytes() not in data and b"GPS" not in data
    assert not any(key.startswith("gps") or "location" in key for key in read_index(index_path).photos.columns)


def test_an_index_written_without_metadata_still_loads_with_file_times(tmp_path):
    records = [without_metadata({**photo_record(i), "mtime_ns": FILE_TIME_NS + i * 10**9}) for i in range(3)]
    index = replace(valid_index(3), photos=PhotoTable.from_records(records))
    assert not set(METADATA_KEYS) & set(index.photos.columns)
    write_index(index, tmp_path / "old.pkl")
    loaded = read_index(tmp_path / "old.pkl").photos
    assert not loaded.has_metadata
    assert [(p["taken"], p["taken_source"], p["camera"], p["exif_tags"]) for p in loaded] == [
        (FILE_TIME_NS // 10**9 + i, "file", "", None) for i in range(3)
    ]
    np.testing.assert_array_equal(loaded.taken(), FILE_TIME_NS // 10**9 + np.arange(3))


def test_an_update_over_an_index_without_metadata_reads_it_from_the_file_headers(camera_folder, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(camera_folder, index_path, OPTIONS)
    current = read_index(index_path)
    expected = list(current.photos)
    old = replace(current, photos=PhotoTable.from_records([without_metadata(p) for p in expected]))
    write_index(old, index_path)  # a new file in its place: `current` keeps mapping the one it read
    assert not read_index(index_path).photos.has_metadata
    report = build_index(camera_folder, index_path, OPTIONS)
    assert report.embedded == 0 and report.reused == 3
    assert list(read_index(index_path).photos) == expected


def test_a_touched_photo_without_exif_takes_its_new_file_time(camera_folder, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(camera_folder, index_path, OPTIONS)
    later = FILE_TIME_NS + 86_400 * 10**9
    os.utime(camera_folder / "scan.png", ns=(later, later))
    os.utime(camera_folder / "trip" / "beach.jpg", ns=(later, later))
    report = build_index(camera_folder, index_path, OPTIONS)
    assert report.rehashed == 2 and report.embedded == 0
    photos = {photo["path"]: photo for photo in read_index(index_path).photos}
    assert photos["scan.png"]["taken"] == later // 10**9
    assert photos["trip/beach.jpg"]["taken"] == JUNE_15  # the camera's date does not move with the file


def _with_columns(edit) -> bytes:
    index = valid_index(4).as_dict()
    columns = dict(index["photos"].columns)
    edit(columns)
    index["photos"] = columns  # written as they are: a PhotoTable could not even be made of some
    return index_file_bytes(index)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("camera_bytes"), "some metadata columns but not 'camera_bytes'"),
        (lambda c: c.update(taken=c["taken"].astype(np.float64)), "'taken' must be a 1-d int64 array"),
        (lambda c: c.update(taken=c["taken"][:2]), "'taken' has shape"),
        (lambda c: c.update(taken_source=np.full(4, 7, np.uint8)), "'taken_source' must be below 2"),
        (lambda c: c.update(exif_tags=np.full(4, -1, np.int32)), "'exif_tags' must not be negative"),
        (lambda c: c.update(camera_offsets=c["camera_offsets"][::-1].copy()), "'camera_offsets' must rise"),
        (lambda c: c.update(camera_offsets=np.array([0, 0, 0, 0, 300]), camera_bytes=np.full(300, 65, np.uint8)),
         "camera name is over 256 bytes"),
    ],
)
def test_damaged_metadata_columns_are_refused(tmp_path, edit, message):
    (tmp_path / "index.pkl").write_bytes(_with_columns(edit))
    with pytest.raises(IndexFileError, match=message):
        read_index(tmp_path / "index.pkl")


def test_records_with_and_without_metadata_cannot_be_mixed():
    with pytest.raises(IndexFileError, match="photo 1: no metadata"):
        PhotoTable.from_records([photo_record(0), without_metadata(photo_record(1))])


def test_a_camera_name_that_is_not_utf8_in_the_file_is_shown_not_refused(tmp_path):
    index = valid_index(2)
    columns = dict(index.photos.columns)
    columns.update(camera_offsets=np.array([0, 0, 3]), camera_bytes=np.frombuffer(b"X\xffY", np.uint8))
    index = replace(index, photos=PhotoTable(columns))
    (tmp_path / "index.pkl").write_bytes(index_file_bytes(index))
    assert [p["camera"] for p in read_index(tmp_path / "index.pkl").photos] == ["", "X\ufffdY"]


def test_png_without_exif_has_no_tags():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "PNG")
    decoded = decode_photo(buffer.getvalue(), 224, 320)
    assert (decoded.exif.taken, decoded.exif.camera, decoded.exif.tags) == (None, "", 0)
