"""`/duplicates` and `/api/duplicates`: groups of duplicate photos, one page of groups at a time.

Two kinds (`?kind=`): "same picture" groups (verified copies, the default
where the index has the evidence) and "similar shots" (photos at least
`?threshold=` alike; the only kind an index without the evidence offers, and
what a `threshold` alone asks for, as it did before there were kinds). The
groups come from `core.duplicate_groups`, the owner of what a group is and
which photo to keep, which `python -m tools.duplicates` uses too. Each
worker finds the groups of a kind and threshold once and keeps those of the
last few (two arrays each); a page makes the photo dicts of its own
groups only, so the 1,000th page of 20,000 groups costs what the first does.

A group may hold hundreds of thousands of photos (chains of look-alikes at a
low threshold), so a page of groups shows each group's first few photos and
links to the group's own pages (`/duplicates/groups/N`), and no page or API
answer holds more than MAX_PHOTOS_PER_PAGE photos, whatever `per_page` asks.
The web app only shows groups: moving photos is the command's job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup, escape

from app.cards import described_cards
from app.catalog import Catalog, date_taken, display_name
from app.links import base_url
from app.views import catalog, int_arg, keep_if_linked, photo_as_json
from core.duplicate_groups import (
    DEFAULT_THRESHOLD, GROUP_KINDS, KEEP_RULE, MAX_THRESHOLD, MIN_THRESHOLD, NO_EVIDENCE, SAME_PICTURE, SIMILAR_SHOTS,
    DuplicateGroups, find_groups, photo_facts, same_picture_groups,
)

duplicate_pages = Blueprint("duplicates", __name__)

DEFAULT_GROUPS_PER_PAGE = 20
MAX_GROUPS_PER_PAGE = 100
MEMBERS_SHOWN = 12  # of each group on a page of groups (fewer when per_page is large); its own pages show the rest
DEFAULT_MEMBERS_PER_PAGE = 48  # on a group's own pages
MAX_PHOTOS_PER_PAGE = 400  # photos in one page or API answer, whatever per_page asks
THRESHOLDS_KEPT = 8  # per worker: the groups of this many thresholds (or same picture), the least recently used dropped first
_THRESHOLD_TEXT = re.compile(r"[01](?:\.[0-9]{1,2})?")  # 0.9, 0.90, 1: two decimals at most, so few distinct keys


@duplicate_pages.record_once
def _keep_groups_per_threshold(state: BlueprintSetupState) -> None:
    collection: Catalog = state.app.extensions["lookalike.catalog"]

    @lru_cache(maxsize=THRESHOLDS_KEPT)
    def groups_at(threshold: float | None) -> DuplicateGroups:
        if threshold is None:
            return same_picture_groups(collection.same_picture, collection.photos, collection.different_picture)
        return find_groups(collection.neighbours, collection.scores, collection.photos, threshold)

    state.app.extensions["lookalike.duplicates"] = groups_at


def groups_at(threshold: float | None) -> DuplicateGroups:
    """Same-picture groups for None, else the similar shots at `threshold`."""
    finder: Callable[[float | None], DuplicateGroups] = current_app.extensions["lookalike.duplicates"]
    return finder(threshold)


def has_evidence() -> bool:
    """Whether the index holds verified same-picture pairs."""
    return catalog().same_picture is not None


@dataclass(frozen=True)
class Selection:
    """Which groups a request asks for: the one place that reads, links and finds them (a further argument goes here)."""

    threshold: float | None  # None: same-picture groups; else similar shots at this similarity

    @classmethod
    def from_request(cls) -> Selection:
        """From `kind` and `threshold` (see the module docstring); a 400 or 404 that says why for what cannot be had."""
        kind = request.args.get("kind")
        if kind is None:
            kind = SIMILAR_SHOTS if "threshold" in request.args or not has_evidence() else SAME_PICTURE
        elif kind not in GROUP_KINDS:
            abort(400, description=f"The kind of group is {' or '.join(GROUP_KINDS)}; {kind[:20]!r} is not.")
        if kind == SIMILAR_SHOTS:
            return cls(_threshold())
        if "threshold" in request.args:
            abort(400, description=f"A threshold applies to similar shots (kind={SIMILAR_SHOTS}), not to same-picture groups.")
        if not has_evidence():
            abort(404, description=f"Same-picture groups: {NO_EVIDENCE}.")
        return cls(None)

    @property
    def kind(self) -> str:
        return SAME_PICTURE if self.threshold is None else SIMILAR_SHOTS

    def similar(self) -> Selection:
        """Similar shots at this selection's threshold, or the default one."""
        return Selection(DEFAULT_THRESHOLD if self.threshold is None else self.threshold)

    def groups(self) -> DuplicateGroups:
        return groups_at(self.threshold)

    def link_args(self) -> dict:
        """The query arguments the site's links carry for it, defaults left out (the page cache keeps only those)."""
        args: dict = {}
        if self.threshold is not None and has_evidence():
            args["kind"] = SIMILAR_SHOTS
        if self.threshold is not None and self.threshold != DEFAULT_THRESHOLD:
            args["threshold"] = f"{self.threshold:.2f}"
        return args


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


def duplicates_url(selection: Selection, page: int = 1, per_page: int = DEFAULT_GROUPS_PER_PAGE) -> str:
    """The URL of a page of groups, as the site's own links spell it."""
    return f"{request.script_root}/duplicates{_query(_paged(selection, page, per_page, DEFAULT_GROUPS_PER_PAGE))}"


def group_url(selection: Selection, group: int, page: int = 1, per_page: int = DEFAULT_MEMBERS_PER_PAGE,
              api: bool = False) -> str:
    """The URL of a page of one group's photos (`group` counts from 1, as the pages number them), or of its JSON."""
    query = _query(_paged(selection, page, per_page, DEFAULT_MEMBERS_PER_PAGE))
    return f"{request.script_root}{'/api' if api else ''}/duplicates/groups/{group}{query}"


def _paged(selection: Selection, page: int, per_page: int, default_per_page: int) -> dict:
    args = selection.link_args()
    if page != 1:
        args["page"] = page
    if per_page != default_per_page:
        args["per_page"] = per_page
    return args


def _query(args: dict) -> str:
    return f"?{urlencode(args)}" if args else ""


def _page_count(items: int, per_page: int, number: int, what: str) -> int:
    """The pages `items` fill at `per_page` a page (one when empty); a 404 that says `what` when page `number` is past them."""
    pages = max(1, math.ceil(items / per_page))
    if number > pages:
        abort(404, description=f"{what}: {pages} pages of {per_page}.")
    return pages


@dataclass(frozen=True)
class ShownGroup:
    number: int  # from 1, in the order of the groups
    size: int  # photos in the whole group
    photos: list[dict]  # those shown: the first few of the group, the suggested keep first


@dataclass(frozen=True)
class GroupsPage:
    selection: Selection
    groups: DuplicateGroups
    number: int
    pages: int
    per_page: int
    members_shown: int  # the most photos shown of each group
    shown: list[ShownGroup]

    @property
    def first(self) -> int:
        return (self.number - 1) * self.per_page + 1


def _page_of_groups() -> GroupsPage:
    """The page of groups the request asks for, each cut to its first few photos."""
    selection = Selection.from_request()
    per_page = min(MAX_GROUPS_PER_PAGE, int_arg("per_page", DEFAULT_GROUPS_PER_PAGE))
    number = int_arg("page", 1)
    groups = selection.groups()
    pages = _page_count(len(groups), per_page, number, f"There are {len(groups)} groups of this kind")
    members_shown = min(MEMBERS_SHOWN, MAX_PHOTOS_PER_PAGE // per_page)
    first = (number - 1) * per_page
    shown = groups.groups(first, number * per_page)
    photos = catalog().photos_at_rows([int(row) for rows in shown for row in rows[:members_shown]])
    page, at = [], 0
    for offset, rows in enumerate(shown):
        count = min(len(rows), members_shown)
        page.append(ShownGroup(first + offset + 1, len(rows), photos[at : at + count]))
        at += count
    keep_if_linked(_paged(selection, number, per_page, DEFAULT_GROUPS_PER_PAGE))
    return GroupsPage(selection, groups, number, pages, per_page, members_shown, page)


@dataclass(frozen=True)
class GroupPage:
    selection: Selection
    group: int  # from 1
    size: int
    number: int
    pages: int
    per_page: int
    photos: list[dict]

    @property
    def first(self) -> int:
        return (self.number - 1) * self.per_page + 1

    @property
    def listing_page(self) -> int:
        """The page of groups (at the default size) this group is on."""
        return (self.group - 1) // DEFAULT_GROUPS_PER_PAGE + 1


def _page_of_group(group: int) -> GroupPage:
    """One page of one group's photos, in the keep rule's order."""
    selection = Selection.from_request()
    groups = selection.groups()
    if not 1 <= group <= len(groups):
        abort(404, description=f"There are {len(groups)} groups of this kind; there is no group {group}.")
    per_page = min(MAX_PHOTOS_PER_PAGE, int_arg("per_page", DEFAULT_MEMBERS_PER_PAGE))
    number = int_arg("page", 1)
    rows = groups.group(group - 1)
    pages = _page_count(len(rows), per_page, number, f"Group {group} has {len(rows)} photos")
    photos = catalog().photos_at_rows([int(row) for row in rows[(number - 1) * per_page : number * per_page]])
    keep_if_linked(_paged(selection, number, per_page, DEFAULT_MEMBERS_PER_PAGE))
    return GroupPage(selection, group, len(rows), number, pages, per_page, photos)


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


def group_cards(photos: list[dict], keep_first: bool = True) -> Markup:
    """Photos of one group side by side; the suggested keep (the group's first) marked when it is among them."""
    keep = photos[0]["id"] if keep_first and photos else None
    return described_cards(photos, lambda photo: _facts(photo, photo["id"] == keep), marked_first=keep_first)


duplicate_pages.add_app_template_global(group_cards)
duplicate_pages.add_app_template_global(duplicates_url)
duplicate_pages.add_app_template_global(group_url)


@duplicate_pages.route("/duplicates")
def duplicates():
    page = _page_of_groups()
    return render_template("duplicates.html", page=page, threshold=page.selection.threshold, rule=KEEP_RULE,
                           k=catalog().neighbours.shape[1], bounds=(MIN_THRESHOLD, MAX_THRESHOLD), evidence=has_evidence(),
                           same_picture=Selection(None), no_evidence=NO_EVIDENCE)


@duplicate_pages.route("/duplicates/groups/<id:group>")
def duplicate_group(group: int):
    page = _page_of_group(group)
    return render_template("duplicate_group.html", page=page, threshold=page.selection.threshold, rule=KEEP_RULE)


@duplicate_pages.route("/api/duplicates")
def duplicates_json():
    page = _page_of_groups()
    groups = page.groups
    return jsonify({
        "kind": page.selection.kind,
        "kinds": list(GROUP_KINDS) if has_evidence() else [SIMILAR_SHOTS],
        "threshold": page.selection.threshold,
        "keep_rule": KEEP_RULE,
        "groups_total": len(groups),
        "photos_total": groups.photos,
        "photos_with_full_lists": groups.crowded,
        "page": page.number,
        "pages": page.pages,
        "per_page": page.per_page,
        "members_per_group": page.members_shown,
        "groups": [[_photo_json(photo, photo is shown.photos[0]) for photo in shown.photos] for shown in page.shown],
        "group_sizes": [shown.size for shown in page.shown],
        "group_urls": [base_url() + group_url(page.selection, shown.number, api=True) for shown in page.shown],
    })


@duplicate_pages.route("/api/duplicates/groups/<id:group>")
def duplicate_group_json(group: int):
    page = _page_of_group(group)
    first_page = page.number == 1
    return jsonify({
        "kind": page.selection.kind,
        "threshold": page.selection.threshold,
        "keep_rule": KEEP_RULE,
        "group": page.group,
        "size": page.size,
        "page": page.number,
        "pages": page.pages,
        "per_page": page.per_page,
        "photos": [_photo_json(photo, first_page and at == 0) for at, photo in enumerate(page.photos)],
    })


def _photo_json(photo: dict, keep: bool) -> dict:
    return {**photo_as_json(photo), "name": display_name(photo["path"].rpartition("/")[2]), "folder": folder_of(photo),
            **photo_facts(photo), "suggested_keep": keep}
