"""A phone's and a camera's library: HEIC, AVIF, JPEG XL and RAW photos indexed, the videos beside them counted.

The files are real, made here from holidays-dev photos: pillow-heif writes
HEIC, Pillow AVIF, pillow-jxl-plugin JPEG XL, pidng DNG (read back by rawpy).
"""

from __future__ import annotations

import ctypes
import io
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import precompute.raw_decode
from app import create_app
from core.index_file import read_index
from core.location_data import without_location
from precompute.build import BuildOptions, build_index
from precompute.cli import ignored_summary
from precompute.decode import DecodeError
from precompute.decoders import decode_photo
from precompute.isolation import in_child_process
from tests.support.camera_files import dng, encoded, exif_block

# Six scenes of holidays-dev; each is indexed as its JPEG and as one re-encoding of it.
SCENES = ["100000.jpg", "100300.jpg", "101000.jpg", "102500.jpg", "104000.jpg", "105000.jpg"]
TAKEN = "2024:07:14 10:32:05"
TAKEN_SECONDS = 1720953125
CRASH_MODEL = "Crashing Camera"


def _upright_source(holidays_dir: Path, name: str) -> Image.Image:
    return Image.open(holidays_dir / name).convert("RGB")


def _stored_turned(image: Image.Image) -> Image.Image:
    """How a phone stores a photo it shows upright with EXIF orientation 6 (turned 90° clockwise to view)."""
    return image.transpose(Image.Transpose.ROTATE_90)


def _doubled(image: Image.Image) -> Image.Image:
    """Twice the size, even: a RAW's half-size demosaic then has the photo's own resolution."""
    return image.resize((image.width * 2 // 2 * 2, image.height * 2 // 2 * 2))


def write_library(folder: Path, holidays_dir: Path) -> dict[str, str]:
    """The library on disk; returns each re-encoding's file name -> its source's."""
    sources = {}
    a, b, c, d, e, f = (_upright_source(holidays_dir, name) for name in SCENES)
    for name, image in zip(SCENES, (a, b, c, d, e, f)):
        image.save(folder / name, quality=95)
    phone = folder / "phone"
    phone.mkdir()
    # A Live Photo: the HEIC with its motion clip; stored turned, with GPS, a date and a camera.
    (phone / "IMG_0001.HEIC").write_bytes(encoded(_stored_turned(a), "HEIF", exif_block(
        orientation=6, make="Apple", model="iPhone 15", taken=TAKEN, gps=True), quality=90))
    (phone / "IMG_0001.MOV").write_bytes(b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 64)
    (phone / "IMG_0002.avif").write_bytes(encoded(b, "AVIF", exif_block(make="Apple", model="iPhone 15"), quality=80))
    (phone / "IMG_0003.jxl").write_bytes(encoded(c, "JXL", exif_block(), quality=90))
    (phone / "IMG_0004.heic").write_bytes(encoded(d, "HEIF", exif_block(), quality=90))  # no location: served as it is
    (phone / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    camera = folder / "camera"
    camera.mkdir()
    (camera / "DSC_0005.dng").write_bytes(dng(_doubled(e)))  # no preview: demosaiced at half size
    preview = encoded(_stored_turned(_doubled(f)), "JPEG", quality=92)  # as the sensor saw it, like the mosaic
    (camera / "DSC_0006.dng").write_bytes(dng(_stored_turned(_doubled(f)), orientation=6, preview=preview))
    sources.update({"phone/IMG_0001.HEIC": SCENES[0], "phone/IMG_0002.avif": SCENES[1], "phone/IMG_0003.jxl": SCENES[2],
                    "phone/IMG_0004.heic": SCENES[3], "camera/DSC_0005.dng": SCENES[4], "camera/DSC_0006.dng": SCENES[5]})
    # What must cost only itself.
    heic = (phone / "IMG_0004.heic").read_bytes()
    (folder / "bad").mkdir()
    (folder / "bad" / "truncated.heic").write_bytes(heic[: len(heic) // 2])
    (folder / "bad" / "corrupt.cr2").write_bytes(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(range(256)) * 8)
    (folder / "bad" / "crash.dng").write_bytes(dng(_doubled(a), model=CRASH_MODEL))
    # Neither photos nor indexed.
    (folder / "notes.txt").write_text("not a photo")
    (folder / "design.psd").write_bytes(b"8BPS" + b"\x00" * 32)
    return sources


def _crashing_decode_raw(real):
    """LibRaw fed a file that crashes it: a real segmentation fault in the process decoding `crash.dng`."""

    def decode_raw(data: bytes, min_shorter: int, min_longer: int):
        if CRASH_MODEL.encode() in data:
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        return real(data, min_shorter, min_longer)

    return decode_raw


@pytest.fixture(scope="module")
def library(holidays_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The library indexed once, by a run whose decoding worker is a forked process, as the command's."""
    folder = tmp_path_factory.mktemp("library")
    sources = write_library(folder, holidays_dir)
    index_path = tmp_path_factory.mktemp("library-index") / "index.pkl"
    patch = pytest.MonkeyPatch()
    patch.setattr(precompute.raw_decode, "decode_raw", _crashing_decode_raw(precompute.raw_decode.decode_raw))
    try:
        report = build_index(folder, index_path, BuildOptions(model="efficientnet-lite0", workers=1, batch_size=4, k=5))
    finally:
        patch.undo()
    return folder, index_path, sources, report


def _photos(index_path: Path) -> dict[str, dict]:
    return {photo["path"]: photo for photo in read_index(index_path).photos}


def test_every_re_encoding_lists_its_photo_first(library):
    _, index_path, sources, _ = library
    index = read_index(index_path)
    ids = {photo["path"]: photo["id"] for photo in index.photos}
    by_id = {photo["id"]: photo["path"] for photo in index.photos}
    rows = {photo["id"]: row for row, photo in enumerate(index.photos)}
    for name, source in sources.items():
        first = index.neighbours[rows[ids[name]]][0]
        assert by_id[int(index.photos[first]["id"])] == source, name


def test_each_bad_file_costs_only_itself_with_its_reason(library):
    _, index_path, sources, report = library
    reasons = {skipped.relpath: skipped.reason for skipped in report.skipped}
    assert set(reasons) == {"bad/truncated.heic", "bad/corrupt.cr2", "bad/crash.dng"}
    assert "damaged image" in reasons["bad/truncated.heic"]
    assert "RAW" in reasons["bad/corrupt.cr2"]
    assert "crashed (SIGSEGV)" in reasons["bad/crash.dng"]
    assert set(_photos(index_path)) == set(SCENES) | set(sources)


def test_videos_live_photos_and_unsupported_images_are_counted(library):
    *_, report = library
    assert (report.videos, report.live_photo_videos, report.unsupported, report.ignored) == (2, 1, {".psd": 1}, 1)
    assert ignored_summary(report) == ("Ignored 2 videos (1 of them Live Photos' motion; their photos are indexed), "
                                       "1 image of formats Lookalike does not read (.psd 1) and 1 other file.")


def test_orientation_date_and_camera_are_carried_over_never_the_location(library):
    folder, index_path, _, _ = library
    photos = _photos(index_path)
    heic, source = photos["phone/IMG_0001.HEIC"], photos[SCENES[0]]
    assert (heic["width"], heic["height"]) == (source["width"], source["height"])  # upright, as the phone shows it
    assert (heic["taken"], heic["taken_source"], heic["camera"]) == (TAKEN_SECONDS, "exif", "Apple iPhone 15")
    raw = photos["camera/DSC_0006.dng"]
    doubled = (photos[SCENES[5]]["width"] * 2 // 2 * 2, photos[SCENES[5]]["height"] * 2 // 2 * 2)
    assert ((raw["width"], raw["height"]), raw["camera"]) == (doubled, "Canon EOS R5")  # upright by the RAW's orientation
    assert set(heic) >= {"taken", "camera"} and not any("gps" in key.lower() for key in heic)
    thumbnails = index_path.parent / read_index(index_path).thumbnail_dir
    for kind in ("thumb", "preview"):
        with Image.open(thumbnails / heic["thumbnails"][kind]["file"]) as thumbnail:
            assert thumbnail.format == "JPEG" and not thumbnail.getexif()
            assert thumbnail.width > thumbnail.height  # upright: the landscape photo, not its turned stored pixels


@pytest.fixture(scope="module")
def client(library):
    _, index_path, _, _ = library
    return create_app(index_path).test_client()


def test_a_heic_with_gps_is_never_served_with_it(library, client):
    _, index_path, _, _ = library
    heic = _photos(index_path)["phone/IMG_0001.HEIC"]
    page = client.get(f"/photos/{heic['id']}").get_data(as_text=True)
    assert f'href="/photos/{heic["id"]}/full.jpg"' in page and "(HEIC)" in page
    original = client.get(f"/photos/{heic['id']}/original")
    assert original.status_code == 404 and b"location data" in original.data
    full = client.get(f"/photos/{heic['id']}/full.jpg")
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(full.data)) as image:
        assert image.format == "JPEG" and image.size == (heic["width"], heic["height"])
        assert not image.getexif() and "xmp" not in image.info
    assert b"GPS" not in full.data and struct.pack(">I", 48) not in full.data[:2000]
    again = client.get(f"/photos/{heic['id']}/full.jpg", headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304


def test_originals_without_location_are_downloads_beside_a_full_size_view(library, client):
    folder, index_path, _, _ = library
    photos = _photos(index_path)
    heic = photos["phone/IMG_0004.heic"]
    original = client.get(f"/photos/{heic['id']}/original")
    assert original.status_code == 200 and original.data == (folder / "phone/IMG_0004.heic").read_bytes()
    assert original.headers["Content-Disposition"].startswith("attachment")
    raw = photos["camera/DSC_0006.dng"]
    full = client.get(f"/photos/{raw['id']}/full.jpg")
    with Image.open(io.BytesIO(full.data)) as image:
        assert image.size == (raw["width"], raw["height"])  # the camera's full-size preview, upright
    jpeg = photos[SCENES[0]]
    page = client.get(f"/photos/{jpeg['id']}").get_data(as_text=True)
    assert "full.jpg" not in page and "Open the full-size original" in page


@pytest.mark.parametrize("name", ["phone/IMG_0001.HEIC", "phone/IMG_0002.avif"])
def test_search_by_upload_accepts_heic_and_avif(library, client, name):
    folder, index_path, _, _ = library
    response = client.post("/api/search", data={"photo": (io.BytesIO((folder / name).read_bytes()), "upload")},
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    best = response.get_json()["similar"][0]
    assert best["id"] == _photos(index_path)[name]["id"] and best["score"] >= 0.99


def test_an_update_treats_them_like_any_other_file(library, tmp_path):
    folder, index_path, _, _ = library
    copy = tmp_path / index_path.name
    copy.write_bytes(index_path.read_bytes())
    (tmp_path / f"{copy.stem}-thumbnails").symlink_to(index_path.parent / f"{index_path.stem}-thumbnails")
    (folder / "bad" / "crash.dng").unlink()
    report = build_index(folder, copy, BuildOptions(model="efficientnet-lite0", workers=1, batch_size=4, k=5))
    assert (report.embedded, report.added, report.changed, report.removed) == (0, 0, 0, 0)
    assert report.reused == len(_photos(index_path))
    assert {s.relpath for s in report.skipped} == {"bad/truncated.heic", "bad/corrupt.cr2"}  # tried again, as every run


def test_a_heic_declaring_too_many_pixels_is_refused_before_decoding(holidays_dir):
    image = _upright_source(holidays_dir, SCENES[0]).crop((0, 0, 324, 242))  # even: no clean-aperture crop
    data = bytearray(encoded(image, "HEIF"))
    for box in re.finditer(b"ispe", bytes(data)):
        struct.pack_into(">II", data, box.start() + 8, 20_000, 20_000)
    with pytest.raises(Exception, match="too many pixels") as refused:
        decode_photo(bytes(data), 256, 960, "bomb.heic")
    assert "decompression bomb" in str(refused.value)


def test_a_raw_whose_sensor_is_too_large_is_refused_before_unpacking(holidays_dir, monkeypatch):
    data = dng(_doubled(_upright_source(holidays_dir, SCENES[0])))
    monkeypatch.setattr(precompute.raw_decode, "MAX_PIXELS", 100_000)  # the sensor here: 650 × 486
    with pytest.raises(Exception, match="too many pixels"):
        decode_photo(data, 256, 960, "big.dng")


def test_a_raw_is_decoded_from_its_preview_when_large_enough_else_at_half_size(holidays_dir):
    image = _doubled(_upright_source(holidays_dir, SCENES[1]))
    grey = Image.new("RGB", image.size, (90, 90, 90))  # a preview unlike the sensor data, to tell which was decoded
    large, small = encoded(grey, "JPEG"), encoded(grey.resize((image.width // 4, image.height // 4)), "JPEG")
    from_preview = decode_photo(dng(image, preview=large), 120, 320, "x.dng")
    assert from_preview.image.size == (image.width // 2, image.height // 2)  # a JPEG's draft: 1/2 still covers 320
    assert np.abs(np.asarray(from_preview.image, np.float32) - 90).max() <= 2
    demosaiced = decode_photo(dng(image, preview=small), 120, 320, "x.dng")  # the preview is smaller than needed
    assert demosaiced.image.size == (image.width // 2, image.height // 2)
    assert (demosaiced.width, demosaiced.height) == (from_preview.width, from_preview.height) == image.size
    difference = np.abs(np.asarray(demosaiced.image.resize(image.size), np.float32) - np.asarray(image, np.float32))
    assert difference.mean() < 24  # the photo itself, through a mosaic and LibRaw's colour processing


def test_a_raw_original_is_served_as_it_is_only_when_nothing_in_it_can_say_where(holidays_dir):
    image = _doubled(_upright_source(holidays_dir, SCENES[0]))
    plain = dng(image)
    assert without_location(plain) == plain
    assert without_location(dng(image, xmp='<x:xmpmeta><exif:GPSLatitude>48,51.5N</exif:GPSLatitude></x:xmpmeta>')) is None
    gps_preview = encoded(image, "JPEG", exif_block(gps=True))
    assert without_location(dng(image, preview=gps_preview)) is None  # the preview's EXIF has a GPS block
    assert without_location(b"\x00\x00\x00\x18ftypcrx " + bytes(64)) is None  # a CR3: no metadata Pillow reads


def test_a_decoder_that_never_finishes_is_stopped_and_costs_only_its_photo():
    with pytest.raises(DecodeError, match="stopped after 1 s"):
        in_child_process(time.sleep, 60, time_limit_s=1)
    assert in_child_process(sum, [1, 2, 3]) == 6  # and the next photo is decoded as ever


def test_the_share_of_pairs_counts_both_sides_alike(capsys):
    """Issue #22, item 7: 40 photos compared all with all read '1,600 similarities (205.1% of all pairs)'."""
    from types import SimpleNamespace

    from precompute.build import BuildReport
    from precompute.cli import print_summary

    model = SimpleNamespace(name="efficientnet-lite0", weights="ImageNet")
    print_summary(BuildReport(Path("index.pkl"), Path("index-thumbnails"), model, indexed=40, similarities=1_600))
    assert "exact, 1,600 similarities (100.0% of the 40 × 40 pairs)." in capsys.readouterr().out
