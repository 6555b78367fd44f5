"""Every setting the web app reads from the environment: one table, read once at start into a frozen `Settings`.

Each row names the variable, its default, the parser of its text and the help
that docs/web-app.md shows. A value a parser refuses is a `SettingError`
whose message names the variable and says what it takes; create_app turns it
into the one line `lookalike: cannot start: …` and exit status 4.

`python -m app.settings` prints the docs' settings table: paste it over the
table in docs/web-app.md after changing a row (tests/test_settings.py checks
that the two agree; tests/test_app_json.py that app.json's settings are rows here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.index_download import DownloadLimits
from app.links import checked_base_url
from app.media import DEFAULT_LIFETIME_S, MAX_LIFETIME_S, MIN_LIFETIME_S, checked_store_url
from app.page_cache import DEFAULT_BUDGET_MB
from app.search import DEFAULT_SEARCH_THREADS, DEFAULT_SEARCHES_PER_WORKER, SEARCH_SETTINGS
from core import location_data

DEFAULT_MAX_UPLOAD_MB = 20
MAX_TRUSTED_PROXIES = 10


class SettingError(ValueError):
    """A setting's value cannot be used; the message names the variable and says what it takes."""


@dataclass(frozen=True)
class Settings:
    """The web app's settings, as read at start (see SETTINGS for what each one means)."""

    index: Path
    photo_root: str | None
    index_url: str | None
    index_sha256: str | None
    index_max_mb: float
    index_max_unpacked_mb: float
    index_timeout_s: float
    originals_url: str | None
    media_url: str | None
    media_url_lifetime_s: int
    media_public: bool
    base_url: str
    max_upload_mb: float
    searches_per_worker: int
    search_threads: int
    page_cache_mb: float
    search: str
    password: str | None
    users_file: str | None
    secret_key: str
    trusted_proxies: int
    originals: str
    cache: str | None

    @property
    def download_limits(self) -> DownloadLimits:
        """The caps and checksum of the LOOKALIKE_INDEX_URL download."""
        return DownloadLimits(self.index_max_mb, self.index_max_unpacked_mb, self.index_timeout_s, self.index_sha256)


# Parsers: text in, value out; a ValueError's message follows the variable's name ("must be …, not 'x'").


def _megabytes(allow_zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
            raise ValueError(f"must be {'a number' if allow_zero else 'a positive number'} of megabytes, not {text!r}")
        return value

    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError(f"must be a positive number, not {text!r}")
    return value


def _whole_number(low: int, high: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or int(text) < low or (high is not None and int(text) > high):
            raise ValueError(f"must be {what}, not {text!r}")
        return int(text)

    return parse


def _one_of(choices: tuple[str, ...], lower: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        text = text.lower() if lower else text
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return parse


def _sha256(text: str) -> str:
    digest = text.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("must be 64 hexadecimal digits (sha256sum's output)")
    return digest


def _yes(text: str) -> bool:
    return text.lower() == "yes"


def _one_on_heroku(environ: Mapping[str, str]) -> int:
    """1 on Heroku (where `DYNO` is set), else 0"""
    return 1 if environ.get("DYNO") else 0  # on Heroku every request comes through its router


def _downloading(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("LOOKALIKE_INDEX_URL"))


def _serving_originals(environ: Mapping[str, str]) -> bool:
    return environ.get("LOOKALIKE_ORIGINALS", location_data.DEFAULT_MODE) != "off"


def _presigning(environ: Mapping[str, str]) -> bool:
    urls = [environ.get("LOOKALIKE_MEDIA_URL", "")] + ([environ.get("LOOKALIKE_ORIGINALS_URL", "")] if _serving_originals(environ) else [])
    return any(urlsplit(url.strip()).scheme == "s3" for url in urls)


@dataclass(frozen=True)
class Setting:
    """One row of the table.

    `default` is the value when the variable is unset (or blank, with
    `blank_is_unset`), or a function of the environment whose docstring the docs
    show. `strip`: surrounding spaces are dropped first. `read_when`: the value is
    read only when this says the feature using it is on (otherwise the default),
    so a stray value of an unused setting never stops the app.
    """

    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    strip: bool = False
    blank_is_unset: bool = False
    read_when: Callable[[Mapping[str, str]], bool] | None = None

    @property
    def field(self) -> str:
        return self.name.removeprefix("LOOKALIKE_").lower()

    def read(self, environ: Mapping[str, str]) -> Any:
        text = environ.get(self.name)
        if text is not None and self.strip:
            text = text.strip()
        if text is None or (self.blank_is_unset and not text) or (self.read_when and not self.read_when(environ)):
            return self.default(environ) if callable(self.default) else self.default
        try:
            return self.parse(text)
        except ValueError as err:
            raise SettingError(f"{self.name} {err}") from None

    def shown_default(self) -> str:
        """The default as the docs' table shows it."""
        if callable(self.default):
            return self.default.__doc__
        if self.default is None or self.default == "":
            return "unset"
        if isinstance(self.default, bool):
            return "`yes`" if self.default else "`no`"
        return f"`{self.default:g}`" if isinstance(self.default, float) else f"`{self.default}`"


SETTINGS: tuple[Setting, ...] = (
    Setting("LOOKALIKE_INDEX", Path("data/index.pkl"), Path, "the index file"),
    Setting(
        "LOOKALIKE_PHOTO_ROOT", None, str,
        "where the originals are, if not where the index recorded them (never a system folder)",
        blank_is_unset=True,
    ),
    Setting(
        "LOOKALIKE_INDEX_URL", None, str,
        "a `.tar.gz` of the index and its thumbnails (or the index alone, with `LOOKALIKE_MEDIA_URL`), downloaded at "
        "boot (`https://`, or `s3://BUCKET/KEY` read with the AWS credentials; http only from 127.0.0.1/localhost)",
        blank_is_unset=True,
    ),
    Setting(
        "LOOKALIKE_INDEX_SHA256", None, _sha256,
        "the archive's SHA-256 (`sha256sum` output), checked before anything is unpacked",
        strip=True, blank_is_unset=True, read_when=_downloading,
    ),
    Setting(
        "LOOKALIKE_INDEX_MAX_MB", DownloadLimits.download_mb, _positive_number, "largest archive downloaded",
        blank_is_unset=True, read_when=_downloading,
    ),
    Setting(
        "LOOKALIKE_INDEX_MAX_UNPACKED_MB", DownloadLimits.unpacked_mb, _positive_number,
        "most the archive may unpack to", blank_is_unset=True, read_when=_downloading,
    ),
    Setting(
        "LOOKALIKE_INDEX_TIMEOUT_S", DownloadLimits.seconds, _positive_number,
        "longest the download and unpacking may take", blank_is_unset=True, read_when=_downloading,
    ),
    Setting(
        "LOOKALIKE_ORIGINALS_URL", None, checked_store_url,
        "where the originals are served from: a public base URL (`https://my-bucket.s3.amazonaws.com/lookalike/originals/`, "
        "a CDN) or, presigned, `s3://BUCKET/PREFIX/originals/`; `/photos/<id>/original` redirects there",
        strip=True, blank_is_unset=True, read_when=_serving_originals,
    ),
    Setting(
        "LOOKALIKE_MEDIA_URL", None, checked_store_url,
        "where the thumbnails and previews are, as `python -m tools.publish` put them: the prefix's public URL "
        "(`https://my-bucket.s3.amazonaws.com/lookalike/`, path-style or virtual-host, or a CDN; `http://` only from "
        "this machine), or `s3://BUCKET/PREFIX/` for presigned URLs to a private bucket (endpoint from "
        "`AWS_ENDPOINT_URL_S3`, credentials from the standard AWS variables). The app then needs no thumbnail folder. "
        "See [Media in a bucket](privacy-and-security.md#media-in-a-bucket)",
        strip=True, blank_is_unset=True,
    ),
    Setting(
        "LOOKALIKE_MEDIA_URL_LIFETIME_S", DEFAULT_LIFETIME_S,
        _whole_number(MIN_LIFETIME_S, MAX_LIFETIME_S, f"whole seconds from {MIN_LIFETIME_S} to {MAX_LIFETIME_S} (a week)"),
        "how long a presigned URL works, 4 s to a week; URLs stay the same for a quarter of it",
        strip=True, blank_is_unset=True, read_when=_presigning,
    ),
    Setting(
        "LOOKALIKE_MEDIA_PUBLIC", False, _yes,
        "`yes` lets a private gallery use public `https://` media or originals URLs (otherwise it refuses to start)",
        strip=True,
    ),
    Setting(
        "LOOKALIKE_BASE_URL", "", checked_base_url,
        "the site's URL (`https://photos.example.com`) for the JSON API's links and redirects; without it they are "
        "paths on the server the client asked",
        blank_is_unset=True,
    ),
    Setting("LOOKALIKE_MAX_UPLOAD_MB", float(DEFAULT_MAX_UPLOAD_MB), _megabytes(allow_zero=False), "largest upload search accepts"),
    Setting(
        "LOOKALIKE_SEARCHES_PER_WORKER", DEFAULT_SEARCHES_PER_WORKER, _whole_number(1, None, "a whole number of 1 or more"),
        "searches a worker runs at once; more get a 503", blank_is_unset=True,
    ),
    Setting(
        "LOOKALIKE_SEARCH_THREADS", DEFAULT_SEARCH_THREADS, _whole_number(1, None, "a whole number of 1 or more"),
        "threads (ONNX Runtime's and torch's) each search uses", blank_is_unset=True,
    ),
    Setting(
        "LOOKALIKE_PAGE_CACHE_MB", float(DEFAULT_BUDGET_MB), _megabytes(allow_zero=True),
        "rendered pages each worker keeps, most recently used first, and answers again before Flask (64 MB keep about "
        "10,000 photo pages; 0 turns it off)",
    ),
    Setting(
        "LOOKALIKE_SEARCH", "auto", _one_of(SEARCH_SETTINGS, lower=True),
        "`off` turns search by photo off even where torch is installed (`auto`: on where it can work). The embeddings "
        "stay mapped for \"more like these\", but are read only when such a query comes: until then the app's memory "
        "stays that of the gallery",
        strip=True, blank_is_unset=True,
    ),
    Setting("LOOKALIKE_PASSWORD", None, str, "makes the gallery private: the password of the user `lookalike`"),
    Setting(
        "LOOKALIKE_USERS_FILE", None, str,
        "makes the gallery private: a file of `name:hash` lines, one per person (`python -m app.users hash NAME` prints one)",
    ),
    Setting(
        "SECRET_KEY", "", str,
        "signs the session cookies of a private gallery: at least 16 random characters, required with a password",
    ),
    Setting(
        "LOOKALIKE_TRUSTED_PROXIES", _one_on_heroku,
        _whole_number(0, MAX_TRUSTED_PROXIES, f"a number of proxies from 0 to {MAX_TRUSTED_PROXIES}"),
        "how many proxies in front of gunicorn set `X-Forwarded-For` and `X-Forwarded-Proto`",
    ),
    Setting(
        "LOOKALIKE_ORIGINALS", location_data.DEFAULT_MODE, _one_of(location_data.MODES),
        "`stripped`: originals lose their location data; `as-is`; or `off`: originals are not served",
    ),
    Setting(
        "LOOKALIKE_CACHE", None, str,
        "the folder whose `onnx/` keeps the model search by photo (like indexing) exports for ONNX Runtime; unset: "
        "`$XDG_CACHE_HOME/lookalike`, else `~/.cache/lookalike`. Read by the pipeline (precompute/runtime.py)",
        blank_is_unset=True,
    ),
)


def read_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Every setting from `environ`, in the table's order; SettingError names the first bad one."""
    return Settings(**{setting.field: setting.read(environ) for setting in SETTINGS})


def markdown_table() -> str:
    """The settings table of docs/web-app.md."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.shown_default()} | {s.help} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"
