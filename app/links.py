"""Hand-built URLs for the links every page repeats.

A photo page links a dozen photos and thumbnails, and `url_for` costs about
40 µs a call: most of a page's render time. These build the same URLs with
one string format each (tests/test_fast_paths.py checks them against
`url_for`, with and without a SCRIPT_NAME prefix). They need a request context.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from flask import Flask, current_app, request, url_for


def _query(args: dict) -> str:
    return f"?{urlencode(args)}" if args else ""


def photo_url(photo: dict, keep: dict | None = None) -> str:
    return f"{request.script_root}/photos/{photo['id']}{_query(keep or {})}"


def thumbnail_url(photo: dict, kind: str = "thumb") -> str:
    return f"{request.script_root}/photos/{photo['id']}/{kind}.jpg?v={photo['sha1'][:12]}"


def original_url(photo: dict) -> str:
    return f"{request.script_root}/photos/{photo['id']}/original"


def gallery_url(page: int | None = None, keep: dict | None = None) -> str:
    args = {"page": page} if page is not None else {}
    return f"{request.script_root}/{_query({**args, **(keep or {})})}"


def fixed_url(endpoint: str, **values) -> str:
    """`url_for` for links whose URL depends on nothing but the app's mount point: the stylesheet, the search page."""
    return _fixed_url(current_app._get_current_object(), request.script_root, endpoint, tuple(sorted(values.items())))


@lru_cache(maxsize=256)  # bounded: a proxy may let clients choose the mount point
def _fixed_url(app: Flask, script_root: str, endpoint: str, values: tuple) -> str:
    return url_for(endpoint, **dict(values))
