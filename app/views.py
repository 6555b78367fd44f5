"""The pages, the files and the JSON API. Every photo is addressed by its id."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import BinaryIO
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

from werkzeug.exceptions import HTTPException
from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, send_file

from app.access import is_private
from app.cards import photo_card, ranked_cards
from app.catalog import Catalog, Similar, date_taken, display_name
from app.links import (
    api_thumbnail_url,
    base_url,
    fixed_url,
    folder_url,
    full_size_url,
    gallery_url,
    original_url,
    photo_url,
    thumbnail_url,
)
from app.photo_order import SORTS
from app.page_cache import keep_response
from app.renditions import RenditionBusy, RenditionFailed, full_size_jpeg
from core.folder_scope import SCOPES
from core.formats import browser_shows, suffix_of
from core.location_data import without_location
from core.served_type import BROWSER_TYPES, DOWNLOAD_TYPE, image_type

pages = Blueprint("pages", __name__)

DEFAULT_PER_PAGE = 48
# The API's `ranked_by`: whether a similar list's scores include local-feature evidence (`--rerank`), or not.
RANKED_BY = {True: "appearance+local-features", False: "appearance"}
MAX_PER_PAGE = 200
PAGE_SIZES = (24, 48, 96, 192)  # offered in the gallery; any size up to MAX_PER_PAGE works in the URL
THUMBNAIL_MAX_AGE = 365 * 24 * 3600  # thumbnail URLs carry the content hash, so they never go stale
ORIGINAL_MAX_AGE = 24 * 3600


def catalog() -> Catalog:
    return current_app.extensions["lookalike.catalog"]


def int_arg(name: str, default: int) -> int:
    """A positive integer query argument; anything else is a page that does not exist."""
    if name not in request.args:  # MultiDict.get would raise and catch a KeyError: slow, on every page
        return default
    text = request.args[name]
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        abort(404, description=f"There is no such page ({name}={text!r}).")
    return int(text)


def _per_page() -> int:
    return min(MAX_PER_PAGE, int_arg("per_page", DEFAULT_PER_PAGE))


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """A query argument with a few allowed values, the first the default; anything else is a page that does not exist."""
    text = request.args.get(name, choices[0])
    if text not in choices:
        abort(404, description=f"There is no such page ({name}={text!r}; it may be {', '.join(choices)}).")
    return text


def _sort() -> str:
    return _choice("sort", SORTS)


def listing_args(per_page: int, sort: str = SORTS[0]) -> dict:
    """Query arguments that keep the visitor's page size and order as they move between pages."""
    args = {} if per_page == DEFAULT_PER_PAGE else {"per_page": per_page}
    return args if sort == SORTS[0] else {**args, "sort": sort}


def _photo_or_404(photo_id: int) -> dict:
    photo = catalog().photo(photo_id)
    if photo is None:
        abort(404, description=f"There is no photo with id {photo_id}.")
    return photo


pages.add_app_template_filter(date_taken)
for _helper in (photo_card, ranked_cards, photo_url, thumbnail_url, original_url, full_size_url, gallery_url, folder_url, fixed_url):
    pages.add_app_template_global(_helper)


@pages.app_context_processor
def the_catalog() -> dict:
    """Every page's footer describes the collection."""
    return {"catalog": catalog()}


@pages.app_template_filter()
@lru_cache(maxsize=16)  # every page's footer shows the same time: the index's
def when(iso_time: str) -> str:
    """'2026-11-27T01:25:03+00:00' as '27 Nov 2026, 01:25 UTC'."""
    try:
        moment = datetime.fromisoformat(iso_time).astimezone(timezone.utc)
    except ValueError:
        return iso_time
    return moment.strftime("%-d %b %Y, %H:%M UTC")


def keep_if_linked(*queries: dict, still_valid: Callable[[], bool] = lambda: True) -> None:
    """Let the page cache keep this page if it was asked for by a URL our own links use (see app/page_cache.py).

    Made-up query strings (`?page=0002`, `?x=1`) still get their page, rendered
    each time, so they cannot crowd the visitors' pages out of the cache. A page
    with presigned media URLs is kept until the signing window changes.
    """
    if request.query_string.decode("latin-1") in {urlencode(query) for query in queries}:
        media = current_app.extensions["lookalike.media"]
        if media is None or media.public:
            keep_response(still_valid)
        else:
            window = media.window()
            keep_response(lambda: media.window() == window and still_valid())


@pages.route("/")
def gallery():
    return _listing(0)


@pages.route("/folders/<path:name>/")
def folder(name: str):
    """A folder's photos, with breadcrumbs and its subfolders.

    The folder is read from the path's bytes, not from `name`: Werkzeug
    decodes the path as UTF-8 with replacement characters, which would lose a
    folder name that is not UTF-8 on disk (see core/folders.py). Other
    spellings of the same bytes (`shop%2Fsofas`) are the same folder, and the
    page cache, keyed by the decoded path, keeps one page for all of them.
    """
    path = _request_path_bytes().removeprefix(b"/folders/").removesuffix(b"/").decode("utf-8", "surrogateescape")
    code = catalog().folders.code(path) if path else None
    if code is None:
        abort(404, description="There is no such folder in this collection.")
    return _listing(code)


def _request_path_bytes() -> bytes:
    """The request's path below the app's mount point, as the bytes the client sent.

    From the request line as received (gunicorn's RAW_URI, Werkzeug's
    REQUEST_URI), percent-escapes decoded; else from PATH_INFO, which PEP 3333
    says holds those bytes one character each (Werkzeug's test client does not
    keep to it: it decodes as UTF-8 with replacement characters).
    """
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path = unquote_to_bytes(urlsplit(raw).path)
        mount = environ.get("SCRIPT_NAME", "").encode("latin-1", "replace")
        if path.startswith(mount + b"/"):
            return path[len(mount):]
    return environ.get("PATH_INFO", "").encode("latin-1", "replace")


def _listing(code: int):
    """The gallery (code 0, the top folder: every photo) or one folder's own photos, a page of them in the asked order."""
    collection = catalog()
    per_page, sort = _per_page(), _sort()
    number = int_arg("page", 1)
    rows = collection.order.rows(sort, None if code == 0 else collection.folders.rows(code))
    page = collection.page(number, per_page, rows)
    if page is None:
        abort(404, description="That gallery page does not exist.")
    keep = listing_args(per_page, sort)
    # Page 1 is also linked as the gallery itself, without a page number.
    keep_if_linked({"page": number, **keep}, *([keep] if number == 1 else []))
    folders = collection.folders
    return render_template(
        "gallery.html",
        page=page,
        keep=keep,
        sort=sort,
        sort_links={choice: listing_args(per_page, choice) for choice in SORTS},
        page_sizes=sorted({*PAGE_SIZES, per_page}),
        folder=folders.folder(code),
        trail=folders.trail(code)[:-1],
        subfolders=folders.children(code) if number == 1 else [],
        photo_count=len(rows),
    )


@pages.route("/photos/<id:photo_id>")
def photo(photo_id: int):
    photo = _photo_or_404(photo_id)
    per_page, sort, scope = _per_page(), _sort(), _choice("in", SCOPES)
    keep = listing_args(per_page, sort)
    collection = catalog()
    served = _originals_mode() != "off"
    has_original = served and collection.has_original(photo)
    # Asked again before each reuse: an original may leave the disk while the app runs.
    keep_if_linked(keep, *({**keep, "in": other} for other in SCOPES[1:]),
                    still_valid=lambda: (served and collection.has_original(photo)) == has_original)
    similar, complete, reranked = collection.similar_in(photo_id, scope)
    folders = collection.folders
    return render_template(
        "photo.html",
        photo=photo,
        similar=similar,
        similar_complete=complete,
        reranked=reranked,
        scope=scope,
        scopes=SCOPES,
        folder_trail=folders.trail(int(folders.of_row[collection.row(photo_id)])),
        previous=collection.beside(photo_id, -1, sort),
        next=collection.beside(photo_id, +1, sort),
        has_original=has_original,
        originals_served=served,
        # A browser cannot show a HEIC or RAW: a JPEG of it to view (made from the file on disk), the original to download.
        viewable=browser_shows(photo["path"]),
        full_size=collection.original_url(photo) is None,
        original_format=suffix_of(photo["path"]).removeprefix(".").upper(),
        gallery_page=collection.page_of(photo_id, per_page, sort),
        keep=keep,
    )


@pages.route("/photos/<id:photo_id>/<any(thumb, preview):kind>.jpg")
def thumbnail(photo_id: int, kind: str):
    photo = _photo_or_404(photo_id)
    if current_app.extensions["lookalike.media"] is not None:  # in the media store: links made before still work
        return redirect(thumbnail_url(photo, kind), code=302)
    file = catalog().open_thumbnail(photo, kind)
    if file is None:
        abort(404, description="The thumbnail file is missing; rebuild the index to restore it.")
    # The file is named after the photo's content, so its name is its ETag.
    etag = photo["thumbnails"][kind]["file"]
    response = _send_opened(file, etag, mimetype="image/jpeg", max_age=THUMBNAIL_MAX_AGE)
    response.cache_control.immutable = True
    return response


def _originals_mode() -> str:
    return current_app.extensions["lookalike.settings"].originals


@pages.route("/photos/<id:photo_id>/original")
def original(photo_id: int):
    photo = _photo_or_404(photo_id)
    mode = _originals_mode()
    if mode == "off":
        abort(404, description="This gallery does not serve original photos; the preview is the largest copy.")
    remote = catalog().original_url(photo)
    if remote is not None:
        return redirect(remote, code=302)
    file = catalog().open_original(photo)
    if file is None:
        abort(404, description="The original photo is no longer on disk.")
    name = download_name(photo["path"])
    if mode == "as-is":
        return _send_opened(file, photo["sha1"], download_name=name, max_age=ORIGINAL_MAX_AGE,
                            **_served_as(file))
    try:
        with file:  # read from the file opened and checked, never from the path again
            served = without_location(file.read())
    except OSError:
        abort(404, description="The original photo is no longer on disk.")
    if served is None:
        abort(404, description="This original carries location data that cannot be removed without re-encoding it, "
              "so it is not served; the preview shows the photo.")
    data = io.BytesIO(served)
    return send_file(data, download_name=name, max_age=ORIGINAL_MAX_AGE, conditional=True,
                     etag=f"{photo['sha1']}-stripped", **_served_as(data))


def _served_as(file: BinaryIO) -> dict:
    """`send_file`'s type options for an original: the image type its decoder finds, never its name's;
    anything else a download (every response carries `nosniff`), so no file runs as a page on this origin.
    An image browsers cannot show (HEIC, RAW) is a download too: its full-size JPEG is what is viewed."""
    kind = image_type(file)
    if kind in BROWSER_TYPES:
        return {"mimetype": kind}
    return {"mimetype": kind or DOWNLOAD_TYPE, "as_attachment": True}


@pages.route("/photos/<id:photo_id>/full.jpg")
def full_size(photo_id: int):
    """The original as a full-size JPEG, for a format a browser cannot show; never any metadata, so never a location."""
    photo = _photo_or_404(photo_id)
    if _originals_mode() == "off":
        abort(404, description="This gallery does not serve original photos; the preview is the largest copy.")
    etag = f"{photo['sha1']}-full"
    if request.if_none_match.contains(etag):  # the browser has it: nothing to decode
        response = Response(status=304)
        response.set_etag(etag)
        return response
    file = catalog().open_original(photo)
    if file is None:
        abort(404, description="The original photo is not on this server, so no full-size view can be made of it.")
    try:
        with file:  # read from the file opened and checked, never from the path again
            data = file.read()
    except OSError:
        abort(404, description="The original photo is no longer on disk.")
    try:
        jpeg = full_size_jpeg(data, photo["path"])
    except RenditionBusy as err:
        abort(503, description=str(err))
    except RenditionFailed as err:
        abort(404, description=f"The original cannot be shown full size: {err}")
    return send_file(io.BytesIO(jpeg), mimetype="image/jpeg", max_age=ORIGINAL_MAX_AGE, etag=etag, conditional=False)


def download_name(path: str) -> str:
    """The file name for the Content-Disposition header.

    Headers need a name that encodes (one that is not UTF-8 on disk would not)
    and holds no line breaks or other control characters (a header cannot), so
    it is made displayable and those characters become underscores.
    """
    return "".join(c if c.isprintable() else "_" for c in display_name(path.rpartition("/")[2]))


def _send_opened(file: BinaryIO, etag: str, **options) -> Response:
    """`send_file` for a file already opened and checked, with its length, so ranges and revalidation work.

    The ETag is the content hash rather than one made from the path.
    """
    info = os.fstat(file.fileno())
    response = send_file(file, etag=etag, last_modified=info.st_mtime, conditional=False, **options)
    response.content_length = info.st_size
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=info.st_size)


@pages.route("/api/photos/<id:photo_id>/similar")
def similar_json(photo_id: int):
    _photo_or_404(photo_id)
    similar, _, reranked = catalog().similar_in(photo_id, _choice("in", SCOPES))
    return jsonify({"id": photo_id, "ranked_by": RANKED_BY[reranked], "similar": similar_as_json(similar)})


def similar_as_json(similar: list[Similar]) -> list[dict]:
    """URLs relative to this server (or on LOOKALIKE_BASE_URL), never built from the Host header;
    thumbnails carry the content hash, as the pages' do, since they are cached for a year (or are in the
    media store, LOOKALIKE_MEDIA_URL)."""
    base = base_url()
    return [{**photo_as_json(item.photo, base), "score": round(item.score, 4), "same_scene": item.same_scene}
            for item in similar]


def photo_as_json(photo: dict, base: str | None = None) -> dict:
    """A photo in the JSON API: its id, and its page and thumbnail URLs (see `similar_as_json`)."""
    base = base_url() if base is None else base
    return {"id": photo["id"], "url": base + photo_url(photo), "thumbnail": api_thumbnail_url(photo)}


@pages.route("/healthz")
def healthz():
    """Answered to anyone, for the platform's health checks; a private gallery says nothing about its collection."""
    if is_private():
        return jsonify({"status": "ok"})
    return jsonify({"status": "ok", "photos": len(catalog())})


@pages.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    if request.path.startswith("/api/"):
        return jsonify({"error": error.name, "detail": error.description}), error.code
    return render_template("error.html", error=error), error.code
