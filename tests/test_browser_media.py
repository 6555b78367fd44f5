"""The gallery in a real browser with its media in a bucket: holidays-dev published to a local S3 (moto), served
by gunicorn with LOOKALIKE_MEDIA_URL, public and presigned. Every image comes from the bucket, none from the app,
and the CSP lets them in without a single violation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.browser_session import Tab, browser, load_every_image  # noqa: F401 - browser is a fixture
from tests.support.live_server import running_gunicorn
from tests.support.media_bucket import index_alone, make_public, publish
from tests.support.s3_server import running_s3

pytestmark = pytest.mark.browser

BUCKET = "holidays-media"
PREFIX = "holidays-dev"

# Every Content-Security-Policy violation the page sees, blocked or not.
RECORD_CSP_VIOLATIONS = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation", event => window.cspViolations.push(event.blockedURI));"""


@pytest.fixture(scope="module")
def published(holidays_index: Path):
    """holidays-dev's thumbnails and previews published to a private bucket; yields the endpoint."""
    monkeypatch = pytest.MonkeyPatch()
    with running_s3(monkeypatch) as s3:
        s3.create_bucket(BUCKET)
        publish(holidays_index, s3, f"s3://{BUCKET}/{PREFIX}")
        yield s3
    monkeypatch.undo()


@pytest.fixture(scope="module", params=["public", "presigned"])
def media_server(request, published, holidays_index: Path, tmp_path_factory: pytest.TempPathFactory):
    """gunicorn serving the index alone, its media from the bucket: yields (base URL, media URL prefix)."""
    folder = tmp_path_factory.mktemp(f"media-{request.param}")
    if request.param == "public":
        make_public(published.client(), BUCKET)
        media = f"{published.url}/{BUCKET}/{PREFIX}/"
    else:
        published.client().delete_bucket_policy(Bucket=BUCKET)
        media = f"s3://{BUCKET}/{PREFIX}/"
    env = {"LOOKALIKE_MEDIA_URL": media, "AWS_ENDPOINT_URL_S3": published.url,
           "AWS_CONFIG_FILE": str(folder / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(folder / "none")}
    index = index_alone(holidays_index, folder / "dyno")
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, folder / "gunicorn.log", env) as base:
        yield base, f"{published.url}/{BUCKET}/{PREFIX}/"


def test_every_image_on_gallery_and_photo_pages_loads_from_the_bucket(browser, media_server):
    base, bucket_prefix = media_server
    tab = Tab(browser, base)
    image_requests: list[str] = []
    tab.page.on("request", lambda request: image_requests.append(request.url) if request.resource_type == "image" else None)
    tab.page.add_init_script(RECORD_CSP_VIOLATIONS)
    try:
        for path, expected in (("/", 48), ("/photos/7", 1 + 10), ("/?page=2", 48)):
            tab.open(path)
            load_every_image(tab)
            images = tab.page.eval_on_selector_all(
                "main img", "images => images.map(image => [image.currentSrc, image.naturalWidth])")
            assert len(images) == expected, path
            assert all(source.startswith(bucket_prefix) and width > 0 for source, width in images), images
            assert tab.page.evaluate("window.cspViolations") == [], path
        assert image_requests and all(url.startswith(bucket_prefix) for url in image_requests)  # none from the app
        assert tab.errors == []
    finally:
        tab.context.close()
