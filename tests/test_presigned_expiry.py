"""Presigned media URLs expire: against s3rver, a local S3 server that refuses an expired presigned URL.

(moto serves expired ones, so it cannot tell; see tests/support/s3_server.py.)
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app import create_app
from tests.support.media_bucket import fetch, image_sources, index_alone, put_thumbnails
from tests.support.s3_server import running_s3rver

pytestmark = pytest.mark.slow

LIFETIME_S = 20  # short, for the test; a window of 5 s, so a URL has at least 15 s left when served


def _signed_at_and_lifetime(url: str) -> tuple[float, int]:
    """A presigned URL's signing time and lifetime, as it says itself."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return signed.timestamp(), int(query["X-Amz-Expires"])


def test_a_presigned_image_url_works_before_expiry_and_is_refused_after(tiny_index: Path, tmp_path: Path, monkeypatch):
    (tmp_path / "s3").mkdir()
    with running_s3rver(tmp_path / "s3", monkeypatch) as s3:
        s3.create_bucket("private-media")
        files = put_thumbnails(s3.client(), "private-media", "gallery/", tiny_index)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
        monkeypatch.setenv("LOOKALIKE_MEDIA_URL", "s3://private-media/gallery/")
        monkeypatch.setenv("LOOKALIKE_MEDIA_URL_LIFETIME_S", str(LIFETIME_S))
        app = create_app(index_alone(tiny_index, tmp_path / "dyno"))
        preview = image_sources(app.test_client().get("/photos/2").get_data(as_text=True))[0]
        signed_at, lifetime = _signed_at_and_lifetime(preview)
        assert lifetime == LIFETIME_S and signed_at % (LIFETIME_S // 4) == 0  # signed as of its window's start

        status, body = fetch(preview)
        assert status == 200 and body == files[urlsplit(preview).path.rpartition("/")[2]]

        time.sleep(max(0.0, signed_at + lifetime - time.time()) + 1.5)  # s3rver compares with its clock, to the second
        status, body = fetch(preview)
        assert status == 403 and b"Request has expired" in body
