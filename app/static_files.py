"""Static files with far-future caching.

Every static URL the app writes carries `?v=<hash of the file>`, so a changed
file gets a new URL and browsers may keep each version for a year.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, request

FAR_FUTURE_S = 365 * 24 * 3600


def enable_cache_busting(app: Flask) -> None:
    folder = Path(app.static_folder)

    @lru_cache(maxsize=None)
    def version(filename: str) -> str:
        path = (folder / filename).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            return ""
        return hashlib.sha1(path.read_bytes()).hexdigest()[:12]

    @app.url_defaults
    def add_version(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values:
            values.setdefault("v", version(values["filename"]))

    @app.after_request
    def cache_versioned(response):
        filename = (request.view_args or {}).get("filename")
        if request.endpoint == "static" and response.status_code == 200 and request.args.get("v") == version(filename):
            response.cache_control.public = True
            response.cache_control.max_age = FAR_FUTURE_S
            response.cache_control.immutable = True
        return response
