"""The progressive-JPEG scan bomb: thousands of empty scans, each a pass over the whole image, refused before decoding."""

from __future__ import annotations

import io

import pytest

from app.search import UploadRejected, check_upload
from precompute.decode import DecodeError
from precompute.decoders import decode_photo
from core.jpeg_scans import MAX_SCANS, scan_count
from tests.support.hostile_photos import jpeg_bytes, photo_like, scan_bomb


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return scan_bomb()


def test_real_jpegs_have_few_scans():
    photo = photo_like(640, 480)
    assert scan_count(jpeg_bytes(photo)) == 1
    assert scan_count(jpeg_bytes(photo, progressive=True)) == 10
    assert scan_count(jpeg_bytes(photo.convert("L"), progressive=True)) == 6
    assert scan_count(b"\x89PNG\r\n\x1a\n") == 0


def test_marker_bytes_inside_segments_and_scan_data_are_not_counted():
    """A comment segment spelling SOS markers, stuffed zeros and restart markers in the data: still one scan."""
    buffer = io.BytesIO()
    photo_like(640, 480).save(buffer, "JPEG", comment=b"\xff\xda" * 50, restart_marker_blocks=1)
    data = buffer.getvalue()
    assert data.count(b"\xff\xda") > 1 and b"\xff\xd0" in data
    assert scan_count(data) == 1


def test_the_bomb_is_counted_and_refused_before_decoding(bomb):
    assert len(bomb) < 200_000
    assert scan_count(bomb) == MAX_SCANS + 1, "counting stops past the limit"
    assert scan_count(bomb, stop_after=10**6) == 2000 + 6
    with pytest.raises(DecodeError, match=f"over {MAX_SCANS} scans"):
        decode_photo(bomb, 224, 960)


def test_a_progressive_photo_within_the_limit_decodes():
    decoded = decode_photo(jpeg_bytes(photo_like(640, 480), progressive=True), 224, 320)
    assert (decoded.width, decoded.height) == (640, 480)


def test_an_upload_of_the_bomb_is_refused_with_a_clear_message(bomb):
    with pytest.raises(UploadRejected) as refused:
        check_upload(bomb)
    assert refused.value.status == 422
    assert f"The photo is a JPEG of over {MAX_SCANS} scans" in str(refused.value)
