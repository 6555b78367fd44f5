"""Search by photo: the `/search` page (a plain form, works without JavaScript) and `POST /api/search`."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.catalog import Similar
from app.search import ACCEPTED_FORMATS_TEXT, QueryEmbedder, SearchError, SearchUnavailable, UploadRejected
from app.views import RANKED_BY, catalog, similar_as_json

search_pages = Blueprint("search", __name__)

RESULTS = 24


def embedder() -> QueryEmbedder:
    return current_app.extensions["lookalike.search"]


def _max_upload_mb() -> float:
    return current_app.extensions["lookalike.settings"].max_upload_mb


def _search_upload() -> list[Similar]:
    """The photos most similar to the uploaded one; raises SearchError with a status and a message."""
    if embedder().unavailable_reason:
        raise SearchUnavailable(embedder().unavailable_reason)
    upload = request.files.get("photo")
    if upload is None or not upload.filename:
        raise UploadRejected(400, "Choose a photo to upload (form field 'photo').")
    return catalog().nearest(embedder().embed(upload.read()), RESULTS)


def _page(status: int = 200, similar: list[Similar] | None = None, problem: str | None = None):
    upload = request.files.get("photo") if request.method == "POST" else None
    html = render_template(
        "search.html",
        similar=similar,
        problem=problem,
        unavailable=embedder().unavailable_reason,
        filename=upload.filename if upload else None,
        max_upload_mb=_max_upload_mb(),
        formats=ACCEPTED_FORMATS_TEXT,
        keep={},
    )
    return html, status


@search_pages.route("/search", methods=["GET", "POST"])
def search():
    if request.method == "GET":
        return _page()
    try:
        return _page(similar=_search_upload())
    except SearchError as problem:
        return _page(problem.status, problem=str(problem))


@search_pages.route("/api/search", methods=["POST"])
def search_json():
    try:
        return jsonify({"ranked_by": RANKED_BY[False], "similar": similar_as_json(_search_upload())})
    except SearchError as problem:
        abort(problem.status, description=str(problem))


@search_pages.app_errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge):
    message = f"The upload is too large: photos up to {_max_upload_mb():g} MB are accepted."
    if request.path.startswith("/api/"):
        return jsonify({"error": error.name, "detail": message}), 413
    return render_template("error.html", error=error, message=message), 413
