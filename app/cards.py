"""Photo cards: a thumbnail and its name, linking to the photo's page; in a ranked list, with its score.

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
from app.links import photo_url, thumbnail_url
from app.page_cache import RenderedPages

CACHE_BYTES = 8 * 2**20  # per worker: about 14k cards


def photo_card(photo: dict, keep: dict | None = None, score: float | None = None) -> Markup:
    return _card_maker(keep)(photo, score)


def ranked_cards(similar: list[Similar], keep: dict | None = None) -> Markup:
    """Similar photos, best first, as an ordered list of scored cards."""
    card = _card_maker(keep)
    items = "".join(f"<li>{card(item.photo, item.score)}</li>" for item in similar)
    return Markup(f'<ol class="grid ranked">{items}</ol>')


def _card_maker(keep: dict | None) -> Callable[[dict, float | None], Markup]:
    """Cards for one page: what they share is looked up once, not once per card."""
    cards: RenderedPages = current_app.extensions["lookalike_cards"]
    script_root = request.script_root
    keep_key = tuple(keep.items()) if keep else ()

    def card(photo: dict, score: float | None) -> Markup:
        opening = cards.get_or_render((script_root, photo["id"], keep_key), lambda: _card_without_score(photo, keep))
        if score is None:
            return Markup(opening + "</a>")
        score = float(score)
        return Markup(
            f'{opening}<span class="score"><meter min="0" max="1" value="{score:.4f}" aria-hidden="true"></meter>'
            f'<span class="score-value"><span class="visually-hidden">similarity </span>{score:.2f}</span></span></a>'
        )

    return card


def _card_without_score(photo: dict, keep: dict | None) -> str:
    thumb = photo["thumbnails"]["thumb"]
    name = escape(display_name(photo["path"]))
    return (
        f'<a class="card" href="{escape(photo_url(photo, keep))}">'
        f'<img src="{escape(thumbnail_url(photo))}" alt="{name}" loading="lazy"'
        f' width="{int(thumb["width"])}" height="{int(thumb["height"])}">'
        f'<span class="card-name" aria-hidden="true">{name}</span>'
    )
