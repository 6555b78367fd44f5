"""Justified rows without inline styles: each card's list item carries an aspect-ratio class the stylesheet defines.

The layout itself is measured in a real browser (tests/test_browser.py).
"""

from __future__ import annotations

import re

import pytest

from app.cards import ASPECT_RATIOS, aspect_ratio_class
from core.index_file import read_index
from tests.support.live_server import ROOT


def test_the_stylesheet_defines_every_aspect_ratio_class_the_cards_use():
    css = (ROOT / "static" / "style.css").read_text()
    defined = {int(n): float(ar) for n, ar in re.findall(r"^\.ar-(\d+)\{--ar:([\d.]+)\}$", css, re.MULTILINE)}
    assert defined == {n: n / 100 for n in ASPECT_RATIOS}, "regenerate the .ar-NNN block at the end of static/style.css"


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(320, 240, "ar-133"), (240, 320, "ar-75"), (320, 213, "ar-150"), (320, 180, "ar-178"), (100, 100, "ar-100"),
     (320, 20, "ar-400"), (20, 320, "ar-25"), (0, 0, "ar-100")],
)
def test_a_thumbnail_gets_the_nearest_aspect_ratio_bucket_within_the_range(width, height, expected):
    assert aspect_ratio_class(width, height) == expected


def test_buckets_crop_at_most_two_percent_within_the_range():
    for width in range(20, 1281, 7):
        for height in (80, 243, 320, 1000):
            ratio = width / height
            if ASPECT_RATIOS.start / 100 <= ratio <= (ASPECT_RATIOS.stop - 1) / 100:
                bucket = int(aspect_ratio_class(width, height).removeprefix("ar-")) / 100
                assert abs(bucket / ratio - 1) <= 0.02, (width, height)


def test_gallery_and_similar_cards_carry_their_photos_aspect_ratio_and_no_inline_style(synthetic_index):
    from app import create_app

    photos = {photo["id"]: photo["thumbnails"]["thumb"] for photo in read_index(synthetic_index).photos}
    client = create_app(synthetic_index).test_client()
    for url in ("/", "/photos/7"):
        html = client.get(url).get_data(as_text=True)
        items = re.findall(r'<li id="photo-(\d+)" class="(ar-\d+)"><a class="card"', html)
        assert len(items) >= 10
        for photo_id, aspect in items:
            assert aspect == aspect_ratio_class(photos[int(photo_id)]["width"], photos[int(photo_id)]["height"])
        assert "style=" not in html
