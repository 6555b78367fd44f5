"""The probe's attack in Chromium: a GIF that is also a page, loading a GIF that is also a script, as originals.

Served by their names (`evil.html`, `evil.js`), the page ran the script on the
gallery's origin, the CSP's `script-src 'self'` notwithstanding. Served as
what the decoder found, both are pictures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.browser_session import Tab, browser  # noqa: F401 - browser is a fixture
from tests.support.hostile_photos import EVIL_ORIGINALS
from tests.support.index_samples import local_index_of
from tests.support.live_server import running_gunicorn

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("mode", ["as-is", "stripped"])
def test_a_polyglot_original_is_shown_as_a_picture_and_runs_nothing(browser, tiny_index, tmp_path: Path, mode):
    index = local_index_of(tiny_index, tmp_path / "gallery", EVIL_ORIGINALS)
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, tmp_path / "gunicorn.log",
                          {"LOOKALIKE_ORIGINALS": mode}) as base:
        tab = Tab(browser, base)
        try:
            tab.open("/photos/0/original")
            tab.page.wait_for_load_state("load")
            assert tab.page.evaluate("document.contentType") == "image/gif"
            assert tab.page.evaluate("document.title") != "script ran"
        finally:
            tab.context.close()
