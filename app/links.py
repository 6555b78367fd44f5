"""Hand-built URLs for the links every page repeats.

A photo page links a dozen photos and thumbnails, and `url_for` costs about
40 µs a call: most of a page's render time. These build the same URLs with
one string format each (tests/test_fast_paths.py checks them against
`url_for`, with and without a SCRIPT_NAME prefix). They need a request context.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, Response, current_app, request, url_for
from werkzeug.routing import IntegerConverter


class PhotoIdConverter(IntegerConverter):
    """`<id:photo_id>`: a photo id spelled only as the site spells it (ASCII digits, no leading zeros).

    Werkzeug's `int` takes `00001`, full-width and Arabic-Indic digits as 1 too,
    so one photo had many URLs, each a page of its own; those now match no route (404).
    """

    regex = r"(?:0|[1-9][0-9]{0,17})"


def base_url() -> str:
    """LOOKALIKE_BASE_URL (`https://photos.example.com`), or "" for URLs relative to this server: never the Host header."""
    return current_app.extensions["lookalike.settings"].base_url


def checked_base_url(text: str) -> str:
    """A LOOKALIKE_BASE_URL without its trailing slash; ValueError if it is not an http(s) URL of a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an http:// or https:// URL such as https://photos.example.com, not {text!r}")
    return text.rstrip("/")


def loopback_host(host: str | None) -> bool:
    """Whether a URL's host is this machine (localhost, 127.0.0.0/8, ::1): the only place plain http:// is accepted."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def location_without_host(response: Response) -> Response:
    """Redirects Werkzeug makes itself (`//` to `/`, a missing slash) name the request's Host: say the path instead.

    The Host header is the client's to choose, so a redirect built from it can send visitors anywhere.
    """
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            response.headers["Location"] = base_url() + path
    return response


def _query(args: dict) -> str:
    return f"?{urlencode(args)}" if args else ""


def photo_url(photo: dict, keep: dict | None = None) -> str:
    return f"{request.script_root}/photos/{photo['id']}{_query(keep or {})}"


def thumbnail_url(photo: dict, kind: str = "thumb") -> str:
    """On this server, or in the media store when LOOKALIKE_MEDIA_URL is set (app/media.py)."""
    media = current_app.extensions["lookalike.media"]
    if media is not None:
        return media.url(photo["thumbnails"][kind]["file"])
    return served_thumbnail_url(photo, kind)


def served_thumbnail_url(photo: dict, kind: str = "thumb") -> str:
    """The app's own thumbnail route; the content hash in the query keeps a year's caching correct."""
    return f"{request.script_root}/photos/{photo['id']}/{kind}.jpg?v={photo['sha1'][:12]}"


def api_thumbnail_url(photo: dict) -> str:
    """For the JSON API: the media store's URL as it is, or the route on LOOKALIKE_BASE_URL."""
    url = thumbnail_url(photo)
    return url if current_app.extensions["lookalike.media"] is not None else base_url() + url


def media_window() -> int:
    """The media store's signing window (app/media.py): pages and cards rendered within one stay valid."""
    media = current_app.extensions["lookalike.media"]
    return 0 if media is None else media.window()


def original_url(photo: dict) -> str:
    return f"{request.script_root}/photos/{photo['id']}/original"


def full_size_url(photo: dict) -> str:
    """The full-size JPEG to view an original a browser cannot show (app/renditions.py)."""
    return f"{request.script_root}/photos/{photo['id']}/full.jpg"


def gallery_url(page: int | None = None, keep: dict | None = None) -> str:
    args = {"page": page} if page is not None else {}
    return f"{request.script_root}/{_query({**args, **(keep or {})})}"


def folder_url(path: str, page: int | None = None, keep: dict | None = None) -> str:
    """A folder's page: its path's very bytes percent-encoded (a name that is not UTF-8 too), ending in a slash.

    The top folder is the gallery itself.
    """
    if not path:
        return gallery_url(page, keep)
    args = {"page": page} if page is not None else {}
    return f"{request.script_root}/folders/{quote(path.encode('utf-8', 'surrogateescape'), safe='/')}/{_query({**args, **(keep or {})})}"


def fixed_url(endpoint: str, **values) -> str:
    """`url_for` for links whose URL depends on nothing but the app's mount point: the stylesheet, the search page."""
    return _fixed_url(current_app._get_current_object(), request.script_root, endpoint, tuple(sorted(values.items())))


@lru_cache(maxsize=256)  # bounded: a proxy may let clients choose the mount point
def _fixed_url(app: Flask, script_root: str, endpoint: str, values: tuple) -> str:
    return url_for(endpoint, **dict(values))
