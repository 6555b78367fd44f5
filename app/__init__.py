"""Lookalike's web app: a gallery of photos, each with its most similar photos.

Configured from the environment: every setting, its default and meaning is a
row of app.settings (and of the table in docs/web-app.md made from it).

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

from app import access, cards
from app.media import Media, MediaSettingError, configured_media
from app.catalog import Catalog, display_name
from app.duplicate_views import duplicate_pages
from app.feedback_views import feedback_pages
from app.index_download import IndexDownloadError, fetch_index
from app.links import PhotoIdConverter, location_without_host
from app.page_cache import RenderedPages, with_page_cache
from app.search import QueryEmbedder
from app.search_views import search_pages
from app.settings import SettingError, Settings, read_settings
from app.static_files import enable_cache_busting
from app.users import UsersError, configured_users
from app.views import pages
from core.index_file import IndexFileError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'{media}; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


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


def _users(settings: Settings) -> dict[str, str]:
    """The users of a private gallery, whose session key must then be long enough; no users for a public one."""
    try:
        users = configured_users(settings.users_file, settings.password)
    except UsersError as err:
        _cannot_start(str(err))
    if users and len(settings.secret_key) < access.MIN_SECRET_KEY_CHARS:
        _cannot_start(
            f"a password is set, so SECRET_KEY must be set too, to at least {access.MIN_SECRET_KEY_CHARS} random "
            "characters (python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return users


def _store(variable: str, url: str | None, what: str, settings: Settings, private: bool) -> Media | None:
    """The store `url` names (app/media.py); a private gallery is not pointed at a public one unless the
    operator says so with LOOKALIKE_MEDIA_PUBLIC=yes."""
    try:
        store = configured_media(url, settings.media_url_lifetime_s)
    except MediaSettingError as err:
        _cannot_start(str(err))
    if store is not None and store.public and private:
        if not settings.media_public:
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
    """Build the app around one index; exit with a clear message if a setting is bad or the index can't be loaded."""
    try:
        settings = read_settings()
    except SettingError as err:
        _cannot_start(str(err))
    index_path = Path(index_path or settings.index)
    photo_root = photo_root or settings.photo_root
    users = _users(settings)
    media = _store("LOOKALIKE_MEDIA_URL", settings.media_url, "thumbnails and previews", settings, private=bool(users))
    originals_store = _store("LOOKALIKE_ORIGINALS_URL", settings.originals_url, "originals", settings, bool(users))
    if originals_store is not None and settings.originals == "stripped":
        _note("originals are served from LOOKALIKE_ORIGINALS_URL: their location data is not removed by the app "
              "(publish --originals removes it before uploading)")
    downloaded = settings.index_url is not None
    try:
        if downloaded:
            fetch_index(settings.index_url, index_path, settings.download_limits, with_thumbnails=media is None)
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
    width = None if catalog.embeddings is None else catalog.embeddings.shape[1]
    embedder = QueryEmbedder(catalog.model, width, settings.search, settings.search_threads, settings.searches_per_worker)
    if embedder.unavailable_reason:
        _note(embedder.unavailable_reason)

    app = Flask(__name__, template_folder=str(_PROJECT_ROOT / "templates"), static_folder=str(_PROJECT_ROOT / "static"))
    app.request_class = InMemoryRequest
    app.url_map.converters["id"] = PhotoIdConverter
    app.after_request(location_without_host)
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_upload_mb * 2**20)
    app.extensions["lookalike.settings"] = settings
    app.extensions["lookalike.catalog"] = catalog
    app.extensions["lookalike.media"] = media
    app.extensions["lookalike.search"] = embedder
    app.extensions["lookalike.pages"] = RenderedPages(settings.page_cache_mb * 2**20)
    app.extensions["lookalike.cards"] = RenderedPages(cards.CACHE_BYTES)
    app.jinja_env.filters["display_name"] = display_name
    app.register_blueprint(pages)
    app.register_blueprint(search_pages)
    app.register_blueprint(duplicate_pages)
    app.register_blueprint(feedback_pages)
    enable_cache_busting(app)
    if users:
        access.make_private(app, users, settings.secret_key)
    app.context_processor(access.page_context)

    # Private: a kept page goes only to a signed-in browser; anyone else reaches Flask, which asks them to sign in.
    gate = access.signed_in_gate(app) if users else None
    app.wsgi_app = with_page_cache(app.wsgi_app, lambda: app.extensions["lookalike.pages"], gate)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
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
