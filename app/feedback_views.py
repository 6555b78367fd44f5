""""More like these" and "not like this": `/similar` (a page of GET forms: works without JavaScript) and `GET /api/similar`.

The whole query is in the URL (`?like=1,2,3&unlike=7&k=24`), so a result page
can be bookmarked and shared. Ids may come comma-separated or as repeated
arguments (what a form of checkboxes sends). The ranking is precompute's
Rocchio query over the stored embeddings (core.relevance_feedback): no
torch, so it works wherever the index carries embeddings, Heroku included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, abort, jsonify, render_template, request

from app.views import catalog, similar_as_json
from core.relevance_feedback import UNLIKE_WEIGHT

feedback_pages = Blueprint("feedback", __name__)

DEFAULT_RESULTS = 24
MAX_RESULTS = 200
MAX_PHOTOS = 50  # liked and rejected together: a query is one URL, and each id costs a row of the mean
_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # as the site spells ids: ASCII digits, no leading zeros


class FeedbackError(Exception):
    """A query that cannot be answered: the message says why, `status` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FeedbackQuery:
    liked: list[int]
    unliked: list[int]
    k: int

    def url(self, k: int) -> str:
        """This query with k results, as the site's links spell it: ids comma-separated, k only when not the default."""
        args = {"like": ",".join(map(str, self.liked))}
        if self.unliked:
            args["unlike"] = ",".join(map(str, self.unliked))
        if k != DEFAULT_RESULTS:
            args["k"] = k
        return f"{request.script_root}/similar?{urlencode(args, safe=',')}"


def feedback_available() -> str | None:
    """None when "more like these" works here; otherwise why not (pages hide it, the API says it)."""
    if catalog().embeddings is None:
        return "This index carries no embeddings, so photos can only be compared through their stored similar lists."
    return None


def _ids(name: str) -> list[int]:
    ids = []
    for value in request.args.getlist(name):
        for text in value.split(","):
            if not _ID.fullmatch(text):
                raise FeedbackError(400, f"{name}: {text!r} is not a photo id (ids are whole numbers, comma-separated).")
            ids.append(int(text))
    return ids


def parsed_query() -> FeedbackQuery:
    """The request's query, checked; raises FeedbackError (400, 404 or 409) with a message a person can act on."""
    problem = feedback_available()
    if problem:
        raise FeedbackError(409, f'"More like these" is not available: {problem}')
    liked, unliked = _ids("like"), _ids("unlike")
    k_text = request.args.get("k", str(DEFAULT_RESULTS))
    if not (k_text.isascii() and k_text.isdigit() and len(k_text) <= 3 and 1 <= int(k_text) <= MAX_RESULTS):
        raise FeedbackError(400, f"k must be a whole number from 1 to {MAX_RESULTS}, not {k_text!r}.")
    if not liked:
        raise FeedbackError(400, 'Pick at least one photo (like=ID), then ask for more like it.')
    if len(liked) + len(unliked) > MAX_PHOTOS:
        raise FeedbackError(400, f"A query may name at most {MAX_PHOTOS} photos, liked and rejected together; "
                                 f"this one names {len(liked) + len(unliked)}.")
    for ids, name in ((liked, "like"), (unliked, "unlike")):
        if len(set(ids)) != len(ids):
            raise FeedbackError(400, f"{name} names a photo twice: {_repeated(ids)}.")
    both = sorted(set(liked) & set(unliked))
    if both:
        raise FeedbackError(400, f"Photo {both[0]} is both liked and rejected; choose one.")
    unknown = [photo_id for photo_id in liked + unliked if catalog().row(photo_id) is None]
    if unknown:
        raise FeedbackError(404, f"There is no photo with id {unknown[0]}.")
    return FeedbackQuery(liked, unliked, int(k_text))


def _repeated(ids: list[int]) -> int:
    seen = set()
    return next(photo_id for photo_id in ids if photo_id in seen or seen.add(photo_id))


@feedback_pages.route("/api/similar")
def more_like_these_json():
    try:
        query = parsed_query()
    except FeedbackError as problem:
        abort(problem.status, description=str(problem))
    similar = catalog().more_like(query.liked, query.unliked, query.k)
    return jsonify({"like": query.liked, "unlike": query.unliked, "similar": similar_as_json(similar)})


@feedback_pages.route("/similar")
def more_like_these():
    try:
        query = parsed_query()
    except FeedbackError as problem:
        return render_template("more_like_these.html", problem=str(problem), query=None), problem.status
    collection = catalog()
    return render_template(
        "more_like_these.html",
        problem=None,
        query=query,
        liked=[collection.photo(photo_id) for photo_id in query.liked],
        unliked=[collection.photo(photo_id) for photo_id in query.unliked],
        similar=collection.more_like(query.liked, query.unliked, query.k),
        more_url=query.url(min(MAX_RESULTS, query.k * 2)),
        keep={},
        default_results=DEFAULT_RESULTS,
        max_results=MAX_RESULTS,
        unlike_weight=UNLIKE_WEIGHT,
    )


@feedback_pages.app_context_processor
def feedback_context() -> dict:
    """Whether pages offer "more like these" (hidden when the index has no embeddings)."""
    return {"feedback_on": feedback_available() is None}
