"""`/duplicates` and `/api/duplicates`: groups of duplicate photos, one page of groups at a time.

Two kinds (`?kind=`): "same picture" groups (verified copies, the default
where the index has the evidence) and "similar shots" (photos at least
`?threshold=` alike; the only kind an index without the evidence offers, and
what a `threshold` alone asks for, as it did before there were kinds). The
groups come from `precompute.duplicate_groups`, the owner of what a group is
and which photo to keep, which `python -m precompute.duplicates` uses too.
Each worker finds the groups of a kind and threshold once and keeps those of
the last few (two arrays each); a page makes the photo dicts of its own
groups only, so the 1,000th page of 20,000 groups costs what the first does.
The web app only shows groups: moving photos is the command's job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup, escape

from app.cards import described_cards
from app.catalog import Catalog, date_taken, display_name
from app.views import catalog, int_arg, keep_if_linked, photo_as_json
from precompute.duplicate_groups import (
    DEFAULT_THRESHOLD, GROUP_KINDS, KEEP_RULE, KIND_NAMES, MAX_THRESHOLD, MIN_THRESHOLD, NO_EVIDENCE, SAME_PICTURE,
    SIMILAR_SHOTS, DuplicateGroups, find_groups, photo_facts, same_picture_groups,
)

duplicate_pages = Blueprint("duplicates", __name__)

DEFAULT_GROUPS_PER_PAGE = 20
MAX_GROUPS_PER_PAGE = 100
THRESHOLDS_KEPT = 8  # per worker: the groups of this many thresholds (and same picture), the least recently used dropped first
_THRESHOLD_TEXT = re.compile(r"[01](?:\.[0-9]{1,2})?")  # 0.9, 0.90, 1: two decimals at most, so few distinct keys


@duplicate_pages.record_once
def _keep_groups_per_threshold(state: BlueprintSetupState) -> None:
    collection: Catalog = state.app.extensions["lookalike"]

    @lru_cache(maxsize=THRESHOLDS_KEPT)
    def groups_at(threshold: float | None) -> DuplicateGroups:
        if threshold is None:
            return same_picture_groups(collection.same_picture, collection.photos)
        return find_groups(collection.neighbours, collection.scores, collection.photos, threshold)

    state.app.extensions["lookalike.duplicates"] = groups_at


def groups_at(threshold: float | None) -> DuplicateGroups:
    """Same-picture groups for None, else the similar shots at `threshold`."""
    finder: Callable[[float | None], DuplicateGroups] = current_app.extensions["lookalike.duplicates"]
    return finder(threshold)


def has_evidence() -> bool:
    return catalog().same_picture is not None


def _selection() -> float | None:
    """None for same-picture groups, else the similar shots' threshold; from `kind` and `threshold` (see the docstring)."""
    kind = request.args.get("kind")
    if kind is None:
        kind = SIMILAR_SHOTS if "threshold" in request.args or not has_evidence() else SAME_PICTURE
    elif kind not in GROUP_KINDS:
        abort(400, description=f"The kind of group is {' or '.join(GROUP_KINDS)}; {kind[:20]!r} is not.")
    if kind == SIMILAR_SHOTS:
        return _threshold()
    if "threshold" in request.args:
        abort(400, description=f"A threshold applies to similar shots (kind={SIMILAR_SHOTS}), not to same-picture groups.")
    if not has_evidence():
        abort(404, description=f"Same-picture groups: {NO_EVIDENCE}.")
    return None


def _threshold() -> float:
    """The `threshold` argument, two decimals from MIN_THRESHOLD to MAX_THRESHOLD; anything else is a 400 saying so."""
    text = request.args.get("threshold")
    if text is None:
        return DEFAULT_THRESHOLD
    value = float(text) if _THRESHOLD_TEXT.fullmatch(text) else math.nan
    if not MIN_THRESHOLD <= value <= MAX_THRESHOLD:
        abort(400, description=f"The threshold must be a number from {MIN_THRESHOLD:.2f} to {MAX_THRESHOLD:.2f} "
              f"with at most two decimals, such as {DEFAULT_THRESHOLD:.2f}; {text[:20]!r} is not.")
    return round(value, 2)


def duplicates_url(threshold: float | None, page: int = 1, per_page: int = DEFAULT_GROUPS_PER_PAGE) -> str:
    """The URL of a page of groups (same picture for None, else similar shots at `threshold`), as the site's own
    links spell it (the page cache keeps only those)."""
    return f"{request.script_root}/duplicates{_query(threshold, page, per_page)}"


def _query(threshold: float | None, page: int, per_page: int) -> str:
    args = _link_args(threshold, page, per_page)
    return f"?{urlencode(args)}" if args else ""


def _link_args(threshold: float | None, page: int, per_page: int) -> dict:
    args: dict = {}
    if threshold is not None and has_evidence():
        args["kind"] = SIMILAR_SHOTS
    if threshold is not None and threshold != DEFAULT_THRESHOLD:
        args["threshold"] = f"{threshold:.2f}"
    if page != 1:
        args["page"] = page
    if per_page != DEFAULT_GROUPS_PER_PAGE:
        args["per_page"] = per_page
    return args


def _page_of_groups() -> tuple[float | None, DuplicateGroups, int, int, int, list[list[dict]]]:
    """(threshold or None, every group, page number, page count, groups per page, this page's groups as photo dicts)."""
    threshold = _selection()
    per_page = min(MAX_GROUPS_PER_PAGE, int_arg("per_page", DEFAULT_GROUPS_PER_PAGE))
    number = int_arg("page", 1)
    groups = groups_at(threshold)
    pages = max(1, math.ceil(len(groups) / per_page))
    if number > pages:
        abort(404, description=f"There are {len(groups)} groups of this kind: {pages} pages of {per_page}.")
    shown = groups.groups((number - 1) * per_page, number * per_page)
    photos = catalog().photos_at_rows([int(row) for rows in shown for row in rows])
    page, at = [], 0
    for rows in shown:
        page.append(photos[at : at + len(rows)])
        at += len(rows)
    keep_if_linked(_link_args(threshold, number, per_page))
    return threshold, groups, number, pages, per_page, page


def folder_of(photo: dict) -> str:
    """The folder a photo is in, relative to the collection's, for display ('' for the top folder)."""
    return display_name(photo["path"].rpartition("/")[0])


def _facts(photo: dict, keep: bool) -> Markup:
    """What decides between the copies, under each photo of a group."""
    folder = folder_of(photo)
    badge = '<p class="keep">Suggested keep</p>' if keep else ""
    return Markup(
        f'<div class="facts">{badge}<dl>'
        f'<dt>Dimensions</dt><dd>{int(photo["width"])} × {int(photo["height"])}</dd>'
        f'<dt>File size</dt><dd>{escape(_file_size(photo["size"]))}</dd>'
        f'<dt>Taken</dt><dd>{escape(date_taken(photo))}</dd>'
        f'<dt>Folder</dt><dd>{escape(folder) if folder else "(top folder)"}</dd>'
        "</dl></div>"
    )


def _file_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def group_cards(photos: list[dict]) -> Markup:
    """One group's photos side by side, the suggested keep (the first) marked."""
    keep = photos[0]["id"]
    return described_cards(photos, lambda photo: _facts(photo, photo["id"] == keep))


duplicate_pages.add_app_template_global(group_cards)
duplicate_pages.add_app_template_global(duplicates_url)


@duplicate_pages.route("/duplicates")
def duplicates():
    threshold, groups, number, pages, per_page, page = _page_of_groups()
    k = catalog().neighbours.shape[1]
    return render_template(
        "duplicates.html", threshold=threshold, groups=groups, number=number, pages=pages, per_page=per_page,
        page=page, first=(number - 1) * per_page + 1, rule=KEEP_RULE, k=k, bounds=(MIN_THRESHOLD, MAX_THRESHOLD),
        evidence=has_evidence(), kind_names=KIND_NAMES, no_evidence=NO_EVIDENCE,
        similar_threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
    )


@duplicate_pages.route("/api/duplicates")
def duplicates_json():
    threshold, groups, number, pages, per_page, page = _page_of_groups()
    return jsonify({
        "kind": groups.kind,
        "kinds": list(GROUP_KINDS) if has_evidence() else [SIMILAR_SHOTS],
        "threshold": threshold,
        "keep_rule": KEEP_RULE,
        "groups_total": len(groups),
        "photos_total": groups.photos,
        "photos_with_full_lists": groups.crowded,
        "page": number,
        "pages": pages,
        "per_page": per_page,
        "groups": [[_photo_json(photo, photo is photos[0]) for photo in photos] for photos in page],
    })


def _photo_json(photo: dict, keep: bool) -> dict:
    return {**photo_as_json(photo), "name": display_name(photo["path"].rpartition("/")[2]), "folder": folder_of(photo),
            **photo_facts(photo), "suggested_keep": keep}
