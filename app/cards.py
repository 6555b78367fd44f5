"""Photo cards: a thumbnail and its name, linking to the photo's page; in a ranked list, with its score.

Each card comes in its list item, classed by its aspect ratio for the justified rows.
Where a page asks for "more like these", the item also holds its checkboxes
(`picks`), beside the link rather than in it, for the GET form around the list.

Every gallery and photo page repeats it, up to 200 times, and a photo page
is mostly cards. As a Jinja macro a card took about 70 µs. Built here, and
with everything but the score kept per worker for the photos last shown,
it takes a few. Every value that is not a number goes through `escape`, as
the templates' autoescaping would do (tests/test_hostile_requests.py checks).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, request
from markupsafe import Markup, escape

from app.catalog import Similar, display_name
from app.links import media_window, photo_url, thumbnail_url
from app.page_cache import RenderedPages

CACHE_BYTES = 8 * 2**20  # per worker: about 14k cards


# Aspect-ratio buckets, in hundredths: a card's list item gets class `ar-133` for a 4:3 thumbnail,
# and static/style.css sets `--ar` for each, from which the justified rows size it (the CSP blocks
# inline styles). Hundredths crop at most 2% at the narrowest bucket; beyond the range, more.
ASPECT_RATIOS = range(25, 401)

# The checkboxes a card may carry, by form field: what they say on the card.
PICK_LABELS = {"like": "More like this", "unlike": "Not like this"}
# The mark of a similar photo whose local details matched (`--rerank`): the page explains it once, above the list.
SAME_SCENE = Markup('<span class="same-scene" title="Details of the two photos match point for point: '
                    'very likely the same place or object">same scene</span>')
FEEDBACK_FORM = "more-like-these"  # the id of the page's GET form to /similar, wherever the cards are


def aspect_ratio_class(width: int, height: int) -> str:
    """The `ar-NNN` class of the bucket nearest a thumbnail's width / height."""
    hundredths = round(100 * width / height) if width > 0 and height > 0 else 100
    return f"ar-{min(max(hundredths, ASPECT_RATIOS.start), ASPECT_RATIOS.stop - 1)}"


def photo_card(photo: dict, keep: dict | None = None, score: float | None = None, picks: tuple[str, ...] = (),
               checked: bool = False) -> Markup:
    """One gallery item: the card in its list item, which `#photo-ID` links land on; `picks` name its checkboxes."""
    return _card_maker(keep, picks, checked)(photo, score)


def ranked_cards(similar: list[Similar], keep: dict | None = None, picks: tuple[str, ...] = ()) -> Markup:
    """Similar photos, best first, as an ordered list of scored cards."""
    card = _card_maker(keep, picks)
    items = "".join(card(item.photo, item.score, SAME_SCENE if item.same_scene else Markup("")) for item in similar)
    return Markup(f'<ol class="grid ranked">{items}</ol>')


def described_cards(photos: list[dict], describe: Callable[[dict], Markup], marked_first: bool = True) -> Markup:
    """Photos side by side in a justified row of cards, each with `describe(photo)` under it (a duplicate group).

    The first card is outlined (a group's suggested keep) unless `marked_first` is false (a group's later pages).
    """
    card = _card_maker(None)
    items = "".join(card(photo, None, describe(photo)) for photo in photos)
    return Markup(f'<ul class="grid described{"" if marked_first else " continued"}">{items}</ul>')


def _card_maker(keep: dict | None, picks: tuple[str, ...] = (), checked: bool = False) -> Callable[..., Markup]:
    """Cards for one page: what they share is looked up once, not once per card."""
    cards: RenderedPages = current_app.extensions["lookalike.cards"]
    script_root = request.script_root
    keep_key = tuple(keep.items()) if keep else ()
    window = media_window()  # presigned thumbnail URLs change from one window to the next

    def card(photo: dict, score: float | None, below: Markup = Markup("")) -> Markup:
        key = (script_root, photo["id"], keep_key, window)
        opening = cards.get_or_render(key, lambda: _card_without_score(photo, keep))
        closing = f"</a>{below}{_pick_boxes(photo, picks, checked) if picks else ''}</li>"
        if score is None:
            return Markup(opening + closing)
        score = float(score)
        return Markup(
            f'{opening}<span class="score"><meter min="0" max="1" value="{score:.4f}" aria-hidden="true"></meter>'
            f'<span class="score-value"><span class="visually-hidden">similarity </span>{score:.2f}</span></span>{closing}'
        )

    return card


def _pick_boxes(photo: dict, picks: tuple[str, ...], checked: bool) -> str:
    """Checkboxes named `like`/`unlike` whose value is the photo's id: a GET form sends them as the query."""
    name = escape(display_name(photo["path"]))
    state = " checked" if checked else ""
    boxes = "".join(
        f'<label class="pick pick-{field}"><input type="checkbox" form="{FEEDBACK_FORM}" name="{field}"'
        f' value="{int(photo["id"])}"{state}>'
        f' {PICK_LABELS[field]}<span class="visually-hidden">: {name}</span></label>'
        for field in picks
    )
    return f'<span class="picks">{boxes}</span>'


def _card_without_score(photo: dict, keep: dict | None) -> str:
    thumb = photo["thumbnails"]["thumb"]
    name = escape(display_name(photo["path"]))
    return (
        f'<li id="photo-{int(photo["id"])}" class="{aspect_ratio_class(int(thumb["width"]), int(thumb["height"]))}">'
        f'<a class="card" href="{escape(photo_url(photo, keep))}">'
        f'<img src="{escape(thumbnail_url(photo))}" alt="{name}" loading="lazy"'
        f' width="{int(thumb["width"])}" height="{int(thumb["height"])}">'
        f'<span class="card-name" aria-hidden="true">{name}</span>'
    )
