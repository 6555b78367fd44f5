"""Lookalike's web app: a gallery of photos, each with its most similar photos.

Configured from the environment:
  LOOKALIKE_INDEX          the index file written by `python -m precompute` (default data/index.pkl)
  LOOKALIKE_INDEX_URL      download a .tar.gz of the index and its thumbnails to LOOKALIKE_INDEX at boot (https, s3)
  LOOKALIKE_PHOTO_ROOT     where the original photos are, if not where the index recorded
  LOOKALIKE_ORIGINALS_URL  serve originals from this base URL (S3, a CDN) or, presigned, s3://BUCKET/PREFIX/
  LOOKALIKE_MEDIA_URL      thumbnails and previews from object storage: https://… (public) or s3://BUCKET/PREFIX/
                           (presigned, LOOKALIKE_MEDIA_URL_LIFETIME_S); see app/media.py
  LOOKALIKE_MEDIA_PUBLIC   `yes`: a private gallery may point those two at public https:// URLs
  LOOKALIKE_BASE_URL       the site's own URL, for the JSON API's links (default: links relative to this server)
  LOOKALIKE_MAX_UPLOAD_MB  largest photo accepted by search by photo (default 20)
  LOOKALIKE_PAGE_CACHE_MB  rendered pages each worker keeps (default 64; 0 turns the cache off)
  LOOKALIKE_SEARCH         `off` turns search by photo off, even where torch is installed (default `auto`)
  LOOKALIKE_SEARCHES_PER_WORKER, LOOKALIKE_SEARCH_THREADS  searches a worker runs at once, threads each (1, 1)
  LOOKALIKE_INDEX_SHA256, LOOKALIKE_INDEX_MAX_MB, LOOKALIKE_INDEX_MAX_UNPACKED_MB, LOOKALIKE_INDEX_TIMEOUT_S
                           checks and caps on the LOOKALIKE_INDEX_URL download (app/index_download.py)
  LOOKALIKE_PASSWORD       make the gallery private: the password of the user `lookalike`
  LOOKALIKE_USERS_FILE     make the gallery private: `name:hash` lines (python -m app.users hash NAME)
  SECRET_KEY               signs the session cookies of a private gallery; required with a password
  LOOKALIKE_TRUSTED_PROXIES  proxies in front that set X-Forwarded-For/-Proto (default 1 on Heroku, else 0)
  LOOKALIKE_ORIGINALS      as-is, stripped (default: without location data) or off

It imports no torch, so the web runtime stays small; search by photo imports
it on first use, where it is installed.
"""

from __future__ import annotations

import gc
import io
import os
import sys
from pathlib import Path
from typing import NoReturn

from flask import Flask
from flask.wrappers import Request
from werkzeug.middleware.proxy_fix import ProxyFix

from app import access, cards, page_cache
from app.media import Media, MediaSettingError, configured_media
from app.catalog import Catalog, display_name
from app.duplicate_views import duplicate_pages
from app.feedback_views import feedback_pages
from app.index_download import IndexDownloadError, fetch_index
from app.links import PhotoIdConverter, checked_base_url, location_without_host
from app.page_cache import RenderedPages, with_page_cache
from app.search import SEARCH_SETTINGS, QueryEmbedder, SearchSettingError
from app.search_views import search_pages
from app.static_files import enable_cache_busting
from app.users import UsersError, configured_users
from app.views import pages
from core import location_data
from core.index_file import IndexFileError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'{media}; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DEFAULT_MAX_UPLOAD_MB = 20


class InMemoryRequest(Request):
    """Uploads stay in memory, bounded by MAX_CONTENT_LENGTH: nothing a visitor sends is written to disk."""

    def _get_file_stream(self, *args, **kwargs) -> io.BytesIO:
        return io.BytesIO()


def _cannot_start(reason: str) -> NoReturn:
    print(f"lookalike: cannot start: {reason}", file=sys.stderr)
    raise SystemExit(4) from None


def _note(text: str) -> None:
    """One line at start for the operator, when something is off but the app can still serve."""
    print(f"lookalike: {text}", file=sys.stderr)


def _max_upload_mb() -> float:
    return _megabytes("LOOKALIKE_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB, allow_zero=False)


def _page_cache_mb() -> float:
    return _megabytes("LOOKALIKE_PAGE_CACHE_MB", page_cache.DEFAULT_BUDGET_MB, allow_zero=True)


def _megabytes(variable: str, default: float, allow_zero: bool) -> float:
    text = os.environ.get(variable, str(default))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
        kind = "a number" if allow_zero else "a positive number"
        _cannot_start(f"{variable} must be {kind} of megabytes, not {text!r}")
    return value


def _search_setting() -> str:
    setting = os.environ.get("LOOKALIKE_SEARCH", "auto").strip().lower() or "auto"
    if setting not in SEARCH_SETTINGS:
        _cannot_start(f"LOOKALIKE_SEARCH must be one of {', '.join(SEARCH_SETTINGS)}, not {setting!r}")
    return setting
def _private_settings() -> tuple[dict[str, str], str]:
    """The users and the session key of a private gallery; no users for a public one."""
    try:
        users = configured_users()
    except UsersError as err:
        _cannot_start(str(err))
    secret_key = os.environ.get("SECRET_KEY", "")
    if users and len(secret_key) < access.MIN_SECRET_KEY_CHARS:
        _cannot_start(
            f"a password is set, so SECRET_KEY must be set too, to at least {access.MIN_SECRET_KEY_CHARS} random "
            "characters (python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return users, secret_key


def _trusted_proxies() -> int:
    default = "1" if os.environ.get("DYNO") else "0"  # on Heroku every request comes through its router
    text = os.environ.get("LOOKALIKE_TRUSTED_PROXIES", default)
    if not (text.isascii() and text.isdigit()) or int(text) > 10:
        _cannot_start(f"LOOKALIKE_TRUSTED_PROXIES must be a number of proxies from 0 to 10, not {text!r}")
    return int(text)


def _originals_mode() -> str:
    mode = os.environ.get("LOOKALIKE_ORIGINALS", location_data.DEFAULT_MODE)
    if mode not in location_data.MODES:
        _cannot_start(f"LOOKALIKE_ORIGINALS must be one of {', '.join(location_data.MODES)}, not {mode!r}")
    return mode


def _store(variable: str, what: str, private: bool) -> Media | None:
    """The store `variable` names (app/media.py); a private gallery is not pointed at a public one unless the
    operator says so with LOOKALIKE_MEDIA_PUBLIC=yes."""
    try:
        store = configured_media(variable)
    except MediaSettingError as err:
        _cannot_start(str(err))
    if store is not None and store.public and private:
        if os.environ.get("LOOKALIKE_MEDIA_PUBLIC", "").strip().lower() != "yes":
            _cannot_start(
                f"the gallery is private, but {variable} {store.base} is public: anyone with the URL of one of its "
                f"{what} gets it without signing in. Use s3://BUCKET/PREFIX/ for presigned URLs, or set "
                f"LOOKALIKE_MEDIA_PUBLIC=yes if public {what} are intended"
            )
        _note(f"{what} are public at {store.base} (LOOKALIKE_MEDIA_PUBLIC=yes): the password does not guard them")
    return store


def security_headers(media: Media | None) -> dict[str, str]:
    """Every response's security headers; the CSP lets images come from this site and the media store's origin only."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _CONTENT_SECURITY_POLICY.format(media=f" {media.origin}" if media else ""),
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


def create_app(index_path: str | os.PathLike | None = None, photo_root: str | os.PathLike | None = None) -> Flask:
    """Build the app around one index; exit with a clear message if the index can't be loaded."""
    index_path = Path(index_path or os.environ.get("LOOKALIKE_INDEX", "data/index.pkl"))
    photo_root = photo_root or os.environ.get("LOOKALIKE_PHOTO_ROOT") or None
    max_upload_mb = _max_upload_mb()
    search = _search_setting()
    users, secret_key = _private_settings()
    trusted_proxies = _trusted_proxies()
    originals_mode = _originals_mode()
    media = _store("LOOKALIKE_MEDIA_URL", "thumbnails and previews", private=bool(users))
    originals_store = _store("LOOKALIKE_ORIGINALS_URL", "originals", bool(users)) if originals_mode != "off" else None
    if originals_store is not None and originals_mode == "stripped":
        _note("originals are served from LOOKALIKE_ORIGINALS_URL: their location data is not removed by the app "
              "(publish --originals removes it before uploading)")
    downloaded = bool(os.environ.get("LOOKALIKE_INDEX_URL"))
    try:
        if downloaded:
            fetch_index(os.environ["LOOKALIKE_INDEX_URL"], index_path, with_thumbnails=media is None)
        catalog = Catalog.load(
            index_path,
            Path(photo_root) if photo_root else None,
            originals_store,
            confined=downloaded,
        )
    except (IndexFileError, IndexDownloadError) as err:
        _cannot_start(str(err))
    if catalog.photo_root_note:
        _note(catalog.photo_root_note)
    try:
        width = None if catalog.embeddings is None else catalog.embeddings.shape[1]
        embedder = QueryEmbedder(catalog.model, width, search)
    except SearchSettingError as err:
        _cannot_start(str(err))
    if embedder.unavailable_reason:
        _note(embedder.unavailable_reason)

    try:
        base_url = checked_base_url(os.environ["LOOKALIKE_BASE_URL"]) if os.environ.get("LOOKALIKE_BASE_URL") else ""
    except ValueError as err:
        _cannot_start(str(err))

    app = Flask(__name__, template_folder=str(_PROJECT_ROOT / "templates"), static_folder=str(_PROJECT_ROOT / "static"))
    app.request_class = InMemoryRequest
    app.url_map.converters["id"] = PhotoIdConverter
    app.config["LOOKALIKE_BASE_URL"] = base_url
    app.after_request(location_without_host)
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 2**20)
    app.config["LOOKALIKE_MAX_UPLOAD_MB"] = max_upload_mb
    app.config["LOOKALIKE_ORIGINALS"] = originals_mode
    app.extensions["lookalike"] = catalog
    app.extensions["lookalike.media"] = media
    app.extensions["lookalike.search"] = embedder
    app.extensions["lookalike_pages"] = RenderedPages(_page_cache_mb() * 2**20)
    app.extensions["lookalike_cards"] = RenderedPages(cards.CACHE_BYTES)
    app.jinja_env.filters["display_name"] = display_name
    app.register_blueprint(pages)
    app.register_blueprint(search_pages)
    app.register_blueprint(duplicate_pages)
    app.register_blueprint(feedback_pages)
    enable_cache_busting(app)
    if users:
        access.make_private(app, users, secret_key)
    app.context_processor(access.page_context)

    # Private: a kept page goes only to a signed-in browser; anyone else reaches Flask, which asks them to sign in.
    gate = access.signed_in_gate(app) if users else None
    app.wsgi_app = with_page_cache(app.wsgi_app, lambda: app.extensions["lookalike_pages"], gate)
    if trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies, x_proto=trusted_proxies)
    app.wsgi_app = _with_security_headers(app.wsgi_app, security_headers(media))
    # The app's objects live as long as it does. Frozen, the garbage collector never walks
    # them, so a full collection in a worker neither pauses it for them nor copies the pages
    # it shares with the others (the index itself is columns, mapped from the file).
    gc.freeze()
    return app


def _with_security_headers(wsgi_app, security: dict[str, str]):
    """Add the `security` headers to every response that lacks them.

    Done on the WSGI header list rather than in `after_request`: Werkzeug's
    Headers.setdefault made up a fifth of a cached page's time.
    """
    lowered = [(name.lower(), (name, value)) for name, value in security.items()]

    def application(environ, start_response):
        def start_with_headers(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(header for name, header in lowered if name not in present)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start_with_headers)

    return application
