"""The settings registry (app.settings): the one place the web app reads its environment, and the docs' table."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from app.settings import SETTINGS, SettingError, Settings, markdown_table, read_settings
from tests.support.live_server import ROOT

MARKER = "<!-- generated: python -m app.settings -->\n"


def test_the_docs_table_is_the_registrys():
    printed = subprocess.run([sys.executable, "-m", "app.settings"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert printed.stdout == markdown_table() and printed.stderr == ""
    doc = (ROOT / "docs" / "web-app.md").read_text()
    assert MARKER in doc, "docs/web-app.md lost the marker above its settings table"
    table = doc.split(MARKER, 1)[1]
    table = table[: table.index("\n\n") + 1] if "\n\n" in table else table
    assert table == markdown_table(), "run `python -m app.settings` and paste its table into docs/web-app.md"


def test_every_row_is_a_field_of_the_frozen_settings():
    assert [setting.field for setting in SETTINGS] == [field.name for field in dataclasses.fields(Settings)]
    settings = read_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.search = "off"


def test_every_lookalike_variable_the_code_names_is_a_row():
    named = set()
    for path in [*ROOT.glob("app/**/*.py"), ROOT / "gunicorn.conf.py", ROOT / "precompute" / "runtime.py"]:
        named |= set(re.findall(r"\bLOOKALIKE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert named == {setting.name for setting in SETTINGS} - {"SECRET_KEY"}


def test_no_module_but_the_registry_reads_a_setting_from_the_environment():
    read = re.compile(r"(environ|getenv)\W{1,8}(get\(\s*)?[\"'](LOOKALIKE_|SECRET_KEY|DYNO)")
    readers = [str(path.relative_to(ROOT)) for path in ROOT.glob("app/**/*.py") if read.search(path.read_text())]
    assert readers == ["app/settings/__init__.py"]


@pytest.mark.parametrize("environ, message", [
    ({"LOOKALIKE_MAX_UPLOAD_MB": "0"}, "LOOKALIKE_MAX_UPLOAD_MB must be a positive number of megabytes, not '0'"),
    ({"LOOKALIKE_MAX_UPLOAD_MB": ""}, "LOOKALIKE_MAX_UPLOAD_MB must be a positive number of megabytes, not ''"),
    ({"LOOKALIKE_PAGE_CACHE_MB": "-1"}, "LOOKALIKE_PAGE_CACHE_MB must be a number of megabytes, not '-1'"),
    ({"LOOKALIKE_SEARCH_THREADS": "0"}, "LOOKALIKE_SEARCH_THREADS must be a whole number of 1 or more, not '0'"),
    ({"LOOKALIKE_SEARCH": " Sometimes "}, "LOOKALIKE_SEARCH must be one of auto, off, not 'sometimes'"),
    ({"LOOKALIKE_TRUSTED_PROXIES": "11"}, "LOOKALIKE_TRUSTED_PROXIES must be a number of proxies from 0 to 10, not '11'"),
    ({"LOOKALIKE_INDEX_URL": "https://example.com/a.tar.gz", "LOOKALIKE_INDEX_SHA256": "abc"},
     "LOOKALIKE_INDEX_SHA256 must be 64 hexadecimal digits (sha256sum's output)"),
    ({"LOOKALIKE_MEDIA_URL": "s3://bucket/", "LOOKALIKE_MEDIA_URL_LIFETIME_S": "3"},
     "LOOKALIKE_MEDIA_URL_LIFETIME_S must be whole seconds from 4 to 604800 (a week), not '3'"),
])
def test_a_bad_value_is_one_error_that_names_the_variable(environ, message):
    with pytest.raises(SettingError) as raised:
        read_settings(environ)
    assert str(raised.value) == message


def test_blank_and_unset_values_keep_their_old_meanings():
    blank = read_settings({"LOOKALIKE_SEARCH_THREADS": "", "LOOKALIKE_SEARCH": " ", "LOOKALIKE_INDEX_URL": "",
                           "LOOKALIKE_MEDIA_URL": " ", "LOOKALIKE_BASE_URL": "", "LOOKALIKE_PHOTO_ROOT": ""})
    assert (blank.search_threads, blank.search, blank.index_url, blank.media_url, blank.base_url, blank.photo_root) == (
        1, "auto", None, None, "", None)
    assert read_settings({"LOOKALIKE_PASSWORD": ""}).password == ""  # set but empty: the app refuses it (app/users.py)
    assert read_settings({}).trusted_proxies == 0 and read_settings({"DYNO": "web.1"}).trusted_proxies == 1


@pytest.mark.parametrize("environ", [
    {"LOOKALIKE_INDEX_MAX_MB": "lots", "LOOKALIKE_INDEX_SHA256": "abc"},  # no LOOKALIKE_INDEX_URL: nothing is downloaded
    {"LOOKALIKE_MEDIA_URL_LIFETIME_S": "forever", "LOOKALIKE_MEDIA_URL": "https://cdn.example.com/"},  # nothing presigned
    {"LOOKALIKE_ORIGINALS": "off", "LOOKALIKE_ORIGINALS_URL": "ftp://x/"},  # no originals served
])
def test_a_setting_of_a_feature_that_is_off_is_not_read(environ):
    read_settings(environ)
