"""Originals lose where they were taken (LOOKALIKE_ORIGINALS=stripped, the default); thumbnails never had it.

The photos are made here with GPS EXIF, XMP and IPTC blocks, indexed by the
real pipeline, and fetched through the app.
"""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from flask import template_rendered
from PIL import ExifTags, Image, PngImagePlugin

from app import create_app
from core.index_file import read_index
from core.location_data import without_location
from tests.support.exif_photos import tiff_structure

GPS = {1: "N", 2: (52.0, 22.0, 31.5), 3: "E", 4: (4.0, 53.0, 12.25), 5: b"\x00", 6: 12.0}
XMP = (b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><rdf:Description "
       b"photoshop:City='Amsterdam' exif:GPSLatitude='52,22.5N'/></rdf:RDF></x:xmpmeta>")
IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x5a\x00\x09Amsterdam\x00"
PLACE_MARKS = (b"Amsterdam", b"http://ns.adobe.com/xap", b"Photoshop 3.0")


def _pixels(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _exif(with_gps: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Model] = "Model 7"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:00:00"
    if with_gps:
        exif[ExifTags.IFD.GPSInfo] = GPS
    return exif


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def jpeg_with_places(seed: int = 0) -> bytes:
    """A camera-like JPEG: EXIF with a GPS block, then XMP and IPTC segments that name the city."""
    out = io.BytesIO()
    _pixels(seed=seed).save(out, "JPEG", quality=90, exif=_exif(with_gps=True).tobytes())
    data = out.getvalue()
    return data[:2] + _segment(0xE1, XMP) + _segment(0xED, IPTC) + data[2:]


def _gps_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(ExifTags.IFD.GPSInfo))


def _image_data(data: bytes) -> bytes:
    return data[data.index(b"\xff\xda"):]


def test_a_jpeg_loses_its_places_and_keeps_the_rest():
    original = jpeg_with_places()
    assert _gps_of(original) and all(mark in original for mark in PLACE_MARKS)
    served = without_location(original)
    assert _gps_of(served) == {}
    assert not any(mark in served for mark in PLACE_MARKS)
    with Image.open(io.BytesIO(served)) as image:
        exif = image.getexif()
        assert (exif[ExifTags.Base.Make], exif[ExifTags.Base.Orientation]) == ("TestCam", 6)
        pixels = np.asarray(image)
    assert _image_data(served) == _image_data(original)  # the compressed pixels, copied byte for byte
    with Image.open(io.BytesIO(original)) as image:
        assert np.array_equal(pixels, np.asarray(image))


def test_a_multi_picture_jpeg_is_served_as_its_first_picture_alone():
    """Multi-picture JPEGs (MPF) append more pictures after the first one's end, each with its own segments."""
    first, with_gps = io.BytesIO(), io.BytesIO()
    _pixels().save(first, "JPEG")
    _pixels(seed=5).save(with_gps, "JPEG", exif=_exif(with_gps=True).tobytes())
    assert without_location(first.getvalue() + with_gps.getvalue()) == first.getvalue()
    mpo = io.BytesIO()
    _pixels().save(mpo, "MPO", save_all=True, append_images=[_pixels(seed=6)])
    served = without_location(mpo.getvalue())
    assert b"MPF\x00" in mpo.getvalue() and b"MPF\x00" not in served  # its index of the dropped pictures goes too
    with Image.open(io.BytesIO(served)) as image, Image.open(io.BytesIO(mpo.getvalue())) as before:
        assert getattr(image, "n_frames", 1) == 1 and np.array_equal(np.asarray(image), np.asarray(before))


def test_a_jpeg_without_places_is_served_as_it_is():
    out = io.BytesIO()
    _pixels().save(out, "JPEG", exif=_exif(with_gps=False).tobytes())
    assert without_location(out.getvalue()) == out.getvalue()
    out = io.BytesIO()
    _pixels().save(out, "JPEG")
    assert without_location(out.getvalue()) == out.getvalue()


@pytest.mark.parametrize("damage", ["truncated segment", "not a JPEG after the start", "bad EXIF length"])
def test_a_damaged_jpeg_is_withheld_rather_than_guessed(damage):
    data = jpeg_with_places()
    if damage == "truncated segment":
        data = data[:30]
    elif damage == "not a JPEG after the start":
        data = data[:2] + b"garbage" + data[2:]
    else:
        data = data[:2] + b"\xff\xe1\x00\x01" + data[2:]
    assert without_location(data) is None


def _png_with_places() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.split(b"\x00", 1)[1].decode())
    info.add_text("Comment", "kept")
    out = io.BytesIO()
    _pixels().save(out, "PNG", pnginfo=info, exif=_exif(with_gps=True).tobytes())
    return out.getvalue()


def _webp_with_places() -> bytes:
    out = io.BytesIO()
    _pixels().save(out, "WEBP", exif=_exif(with_gps=True).tobytes(), xmp=XMP.split(b"\x00", 1)[1])
    return out.getvalue()


def _chunks(data: bytes, kind: bytes) -> bytes:
    """The bytes from the first chunk of `kind` on: for PNG IDAT and WebP VP8, the compressed pixels."""
    return data[data.index(kind):data.index(kind) + 64]


@pytest.mark.parametrize("make, pixel_chunk", [(_png_with_places, b"IDAT"), (_webp_with_places, b"VP8 ")],
                         ids=["PNG", "WebP"])
def test_png_and_webp_lose_their_places_and_keep_the_rest(make, pixel_chunk):
    original = make()
    assert _gps_of(original) and b"Amsterdam" in original
    served = without_location(original)
    assert served is not None and _gps_of(served) == {} and b"Amsterdam" not in served
    assert _chunks(served, pixel_chunk) == _chunks(original, pixel_chunk)
    with Image.open(io.BytesIO(served)) as image, Image.open(io.BytesIO(original)) as before:
        assert image.getexif()[ExifTags.Base.Make] == "TestCam"
        assert not {key for key in image.info if "xmp" in key.lower()}
        assert np.array_equal(np.asarray(image), np.asarray(before))
        if image.format == "PNG":
            assert image.info["Comment"] == "kept"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_other_formats_without_places_are_served_as_they_are(fmt):
    plain = io.BytesIO()
    _pixels().save(plain, fmt, exif=_exif(with_gps=False).tobytes())
    assert without_location(plain.getvalue()) == plain.getvalue()


def test_a_tiff_with_places_is_withheld():
    tiff = io.BytesIO()
    _pixels().save(tiff, "TIFF", exif=_exif(with_gps=True).tobytes())
    assert without_location(tiff.getvalue()) is None


@pytest.mark.parametrize("make", [_png_with_places, _webp_with_places], ids=["PNG", "WebP"])
def test_a_damaged_png_or_webp_is_withheld(make):
    data = make()
    assert without_location(data[: len(data) // 2]) is None


AREA = b"Amsterdam Centraal"  # GPSAreaInformation: the bytes that must not survive
LATITUDE = struct.pack(">6I", 52, 1, 22, 1, 3150, 100)
_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED = 2, 3, 4, 5, 7


def _gps_ifd() -> list[tuple]:
    return [(1, _ASCII, 2, b"N\0"), (2, _RATIONAL, 3, LATITUDE), (0x1C, _UNDEFINED, len(AREA), AREA)]


def _exif_pointing_to_gps_from(where: str) -> bytes:
    """EXIF whose GPS block hangs off IFD1 (the thumbnail's) or the Exif sub-IFD, never IFD0, as Pillow reads it."""
    ifd0 = [(0x010F, _ASCII, 8, b"TestCam\0"), (0x8769, _LONG, 1, ("ifd", 1))]
    exif_ifd = [(0x9003, _ASCII, 20, b"2024:05:01 12:00:00\0")]
    ifd1 = [(0x0103, _SHORT, 1, struct.pack(">H", 6))]
    (exif_ifd if where == "Exif sub-IFD" else ifd1).append((0x8825, _LONG, 1, ("ifd", 3)))
    return b"Exif\x00\x00" + tiff_structure([ifd0, exif_ifd, ifd1, _gps_ifd()], chain={0: 2})


def _no_gps_left(data: bytes) -> None:
    assert AREA not in data and LATITUDE not in data
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        assert exif[ExifTags.Base.Make] == "TestCam"
        for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.IFD1):
            assert ExifTags.IFD.GPSInfo not in exif.get_ifd(ifd)
        assert ExifTags.IFD.GPSInfo not in exif


@pytest.mark.parametrize("where", ["IFD1", "Exif sub-IFD"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_pointed_to_from_any_ifd_is_dropped(fmt, where):
    original = io.BytesIO()
    _pixels().save(original, fmt, exif=_exif_pointing_to_gps_from(where), **({"lossless": True} if fmt == "WEBP" else {}))
    original = original.getvalue()
    assert AREA in original
    served = without_location(original)
    assert served is not None
    _no_gps_left(served)
    with Image.open(io.BytesIO(served)) as image, Image.open(io.BytesIO(original)) as before:
        assert np.array_equal(np.asarray(image), np.asarray(before))
        assert image.getexif().get_ifd(ExifTags.IFD.Exif)[0x9003] == "2024:05:01 12:00:00"


def test_a_tiff_with_gps_in_its_exif_sub_ifd_is_withheld():
    """A TIFF file is itself the EXIF structure: its GPS, pointed to from the Exif sub-IFD, is found there."""
    pixels = bytes(8 * 8 * 3)
    image_ifd = [(0x0100, _SHORT, 1, struct.pack(">H", 8)), (0x0101, _SHORT, 1, struct.pack(">H", 8)),
                 (0x0102, _SHORT, 3, struct.pack(">3H", 8, 8, 8)), (0x0103, _SHORT, 1, struct.pack(">H", 1)),
                 (0x0106, _SHORT, 1, struct.pack(">H", 2)), (0x0111, _LONG, 1, "tail"),
                 (0x0115, _SHORT, 1, struct.pack(">H", 3)), (0x0116, _SHORT, 1, struct.pack(">H", 8)),
                 (0x0117, _LONG, 1, struct.pack(">I", len(pixels))), (0x8769, _LONG, 1, ("ifd", 1))]
    exif_ifd = [(0x9003, _ASCII, 20, b"2024:05:01 12:00:00\0"), (0x8825, _LONG, 1, ("ifd", 2))]
    tiff = tiff_structure([image_ifd, exif_ifd, _gps_ifd()], tail=pixels)
    with Image.open(io.BytesIO(tiff)) as image:
        assert image.size == (8, 8) and ExifTags.IFD.GPSInfo not in image.getexif()  # not where Pillow looks
    assert without_location(tiff) is None


def test_a_thumbnail_with_its_own_gps_gets_the_photo_withheld():
    """The EXIF thumbnail is a JPEG of its own; one that carries GPS is caught by the last look over the copy."""
    thumbnail = io.BytesIO()
    _pixels(32, 24).save(thumbnail, "JPEG", exif=_exif(with_gps=True).tobytes())
    ifd0 = [(0x010F, _ASCII, 8, b"TestCam\0")]
    ifd1 = [(0x0201, _LONG, 1, "tail"), (0x0202, _LONG, 1, struct.pack(">I", len(thumbnail.getvalue())))]
    exif = b"Exif\x00\x00" + tiff_structure([ifd0, ifd1], chain={0: 1}, tail=thumbnail.getvalue())
    photo = io.BytesIO()
    _pixels().save(photo, "JPEG", exif=exif)
    assert without_location(photo.getvalue()) is None


def _mp4_with_a_place() -> bytes:
    """A motion photo's video: ftyp, then moov/udta/©xyz with the place (as phones write it), then mdat."""
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    place = b"+52.3702+004.8952/"
    xyz = box(b"\xa9xyz", struct.pack(">HH", len(place), 0x15C7) + place)
    return box(b"ftyp", b"mp42\0\0\0\0isommp42") + box(b"moov", box(b"udta", xyz)) + box(b"mdat", bytes(256))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_whatever_follows_the_image_s_end_is_dropped(fmt):
    """A motion photo (a JPEG with its MP4 appended) keeps the MP4's ©xyz location unless the tail goes."""
    image = io.BytesIO()
    _pixels().save(image, fmt, exif=_exif(with_gps=False).tobytes())
    motion_photo = image.getvalue() + _mp4_with_a_place()
    served = without_location(motion_photo)
    assert served == image.getvalue()
    assert b"\xa9xyz" not in served and b"+52.3702" not in served
    with Image.open(io.BytesIO(served)) as after, Image.open(io.BytesIO(motion_photo)) as before:
        assert np.array_equal(np.asarray(after), np.asarray(before))


def test_a_progressive_jpeg_is_walked_scan_by_scan_to_its_end():
    """Segments between scans are read too, and the image stays byte for byte."""
    image = io.BytesIO()
    _pixels().save(image, "JPEG", progressive=True, exif=_exif(with_gps=True).tobytes())
    data = image.getvalue()
    assert data.count(b"\xff\xda") > 2
    served = without_location(data + _mp4_with_a_place())
    assert _gps_of(served) == {} and _image_data(served) == _image_data(data)


# Through the app, on an index built by the real pipeline.

@pytest.fixture(scope="module")
def located_index(tmp_path_factory) -> Path:
    from precompute.build import BuildOptions, build_index

    root = tmp_path_factory.mktemp("located")
    photos = root / "photos"
    photos.mkdir()
    (photos / "trip.jpg").write_bytes(jpeg_with_places())
    _pixels(seed=1).save(photos / "map.png", exif=_exif(with_gps=True).tobytes())
    _pixels(seed=3).save(photos / "scan.tif", exif=_exif(with_gps=True).tobytes())
    _pixels(seed=2).save(photos / "plain.jpg")
    index = root / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", k=2, workers=0))
    return index


def _ids(index: Path) -> dict[str, int]:
    return {photo["path"]: photo["id"] for photo in read_index(index).photos}


def _client(index: Path, monkeypatch, mode: str | None):
    for name in ("LOOKALIKE_PASSWORD", "LOOKALIKE_USERS_FILE", "LOOKALIKE_ORIGINALS_URL"):
        monkeypatch.delenv(name, raising=False)
    if mode is None:
        monkeypatch.delenv("LOOKALIKE_ORIGINALS", raising=False)
    else:
        monkeypatch.setenv("LOOKALIKE_ORIGINALS", mode)
    return create_app(index).test_client()


def test_originals_are_stripped_by_default_and_the_file_is_untouched(located_index, monkeypatch):
    client = _client(located_index, monkeypatch, None)
    ids = _ids(located_index)
    on_disk = located_index.parent / "photos" / "trip.jpg"
    before = hashlib.sha1(on_disk.read_bytes()).hexdigest()
    response = client.get(f"/photos/{ids['trip.jpg']}/original")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert _gps_of(response.data) == {} and not any(mark in response.data for mark in PLACE_MARKS)
    assert _image_data(response.data) == _image_data(on_disk.read_bytes())
    assert hashlib.sha1(on_disk.read_bytes()).hexdigest() == before
    again = client.get(f"/photos/{ids['trip.jpg']}/original", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    plain = client.get(f"/photos/{ids['plain.jpg']}/original")
    assert plain.data == (located_index.parent / "photos" / "plain.jpg").read_bytes()


def test_an_original_that_cannot_be_stripped_is_withheld(located_index, monkeypatch):
    client = _client(located_index, monkeypatch, "stripped")
    response = client.get(f"/photos/{_ids(located_index)['scan.tif']}/original")
    assert response.status_code == 404 and b"location data" in response.data
    png = client.get(f"/photos/{_ids(located_index)['map.png']}/original")
    assert png.status_code == 200 and png.mimetype == "image/png" and _gps_of(png.data) == {}


def test_as_is_serves_the_file_byte_for_byte(located_index, monkeypatch):
    client = _client(located_index, monkeypatch, "as-is")
    response = client.get(f"/photos/{_ids(located_index)['trip.jpg']}/original")
    assert response.data == (located_index.parent / "photos" / "trip.jpg").read_bytes()


def test_off_serves_no_original_and_links_none(located_index, monkeypatch):
    client = _client(located_index, monkeypatch, "off")
    photo_id = _ids(located_index)["trip.jpg"]
    assert client.get(f"/photos/{photo_id}/original").status_code == 404
    rendered: list[str] = []
    with template_rendered.connected_to(lambda sender, template, **extra: rendered.append(template.name)):
        page, again = client.get(f"/photos/{photo_id}").text, client.get(f"/photos/{photo_id}").text
    assert f"/photos/{photo_id}/original" not in page and "does not serve originals" in page
    assert again == page and rendered == ["photo.html"]  # kept by the page cache, though the file is on disk


@pytest.mark.parametrize("kind", ["thumb", "preview"])
def test_thumbnails_and_previews_carry_no_metadata(located_index, monkeypatch, kind):
    client = _client(located_index, monkeypatch, "as-is")
    for name, photo_id in _ids(located_index).items():
        data = client.get(f"/photos/{photo_id}/{kind}.jpg").data
        with Image.open(io.BytesIO(data)) as image:
            assert len(image.getexif()) == 0, name
            assert not {"exif", "xmp", "photoshop"} & set(image.info), name
        assert b"Exif\x00\x00" not in data and not any(mark in data for mark in PLACE_MARKS), name


def test_originals_elsewhere_are_said_to_keep_their_places(located_index, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_ORIGINALS_URL", "https://bucket.example/photos/")
    monkeypatch.delenv("LOOKALIKE_ORIGINALS", raising=False)
    create_app(located_index)
    assert "location data is not removed" in capsys.readouterr().err
    monkeypatch.setenv("LOOKALIKE_ORIGINALS", "as-is")
    create_app(located_index)
    assert capsys.readouterr().err == ""
