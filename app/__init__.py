"""Lookalike's web app: a gallery of photos, each with its most similar photos.

Configured from the environment:
  LOOKALIKE_INDEX       the index file written by `python -m precompute` (default data/index.pkl)
  LOOKALIKE_PHOTO_ROOT  where the original photos are, if not where the index recorded

It imports no torch, so the web runtime stays small.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flask import Flask

from app.catalog import Catalog, display_name
from app.page_cache import RenderedPages
from app.views import pages
from precompute.index_file import IndexFileError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(index_path: str | os.PathLike | None = None, photo_root: str | os.PathLike | None = None) -> Flask:
    """Build the app around one index; exit with a clear message if the index can't be loaded."""
    index_path = Path(index_path or os.environ.get("LOOKALIKE_INDEX", "data/index.pkl"))
    photo_root = photo_root or os.environ.get("LOOKALIKE_PHOTO_ROOT") or None
    try:
        catalog = Catalog.load(index_path, Path(photo_root) if photo_root else None)
    except IndexFileError as err:
        print(f"lookalike: cannot start: {err}", file=sys.stderr)
        raise SystemExit(4) from None

    app = Flask(__name__, template_folder=str(_PROJECT_ROOT / "templates"), static_folder=str(_PROJECT_ROOT / "static"))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 7 * 24 * 3600
    app.extensions["lookalike"] = catalog
    app.extensions["lookalike_pages"] = RenderedPages()
    app.jinja_env.filters["display_name"] = display_name
    app.register_blueprint(pages)

    @app.after_request
    def add_security_headers(response):
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
