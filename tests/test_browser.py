"""The gallery in a real browser: Debian's Chromium, driven by Playwright, against a real gunicorn.

Screenshots at phone and desktop widths are kept under artifacts/screenshots/
(git-ignored) for CI to publish.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from core.index_file import read_index
from tests.support.browser_session import DESKTOP, PHONE, Tab, browser, load_every_image  # noqa: F401 - browser is a fixture
from tests.support.live_server import ROOT, running_gunicorn

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def server(holidays_index: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with running_gunicorn([sys.executable, "-m", "gunicorn"], holidays_index, log) as base:
        yield base


@pytest.fixture
def tab(browser, server):
    tab = Tab(browser, server)
    yield tab
    tab.context.close()


def _scores(tab: Tab) -> list[float]:
    """The scores shown on the page, in page order (the text after the hidden "similarity" label)."""
    return [float(text.split()[-1]) for text in tab.page.locator(".similar .score-value").all_inner_texts()]


def _screenshot_without_sideways_scrolling(tab: Tab, path: str, name: str, viewport: dict) -> None:
    """Open `path`, load its images, check nothing scrolls sideways, and keep a full-page screenshot."""
    tab.open(path)
    load_every_image(tab)
    overflow = tab.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {viewport['width']}px"
    shot = SCREENSHOTS / f"{name}-{viewport['width']}.png"
    tab.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_every_thumbnail_in_the_gallery_loads(tab):
    tab.open("/")
    load_every_image(tab)
    widths = tab.page.eval_on_selector_all(".grid img", "images => images.map(image => image.naturalWidth)")
    assert len(widths) == 48
    assert all(width > 0 for width in widths), widths
    assert tab.page.locator(".count").inner_text().startswith("402 photos")
    assert "model efficientnet-lite0" in tab.page.locator("footer").inner_text()
    assert tab.errors == []


def test_photo_page_lists_similar_photos_best_first_and_links_to_them(tab):
    tab.open("/")
    first = tab.page.locator(".grid .card").first
    first_href = first.get_attribute("href")
    first.click()
    tab.page.wait_for_url(tab.base + first_href)
    assert tab.page.locator("h1").inner_text() == "100000.jpg"
    scores = _scores(tab)
    assert len(scores) == 10
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    meters = tab.page.eval_on_selector_all(".similar meter", "meters => meters.map(meter => meter.value)")
    assert [round(value, 2) for value in meters] == pytest.approx(scores, abs=0.006)

    similar = tab.page.locator(".similar .card").first
    href, name = similar.get_attribute("href"), similar.locator(".card-name").inner_text()
    similar.click()
    tab.page.wait_for_url(tab.base + href)
    assert tab.page.locator("h1").inner_text() == name
    load_every_image(tab)
    assert tab.page.eval_on_selector("img.large", "image => image.naturalWidth") > 0
    assert tab.errors == []


def test_pagination_and_page_size(tab):
    tab.open("/")
    page_one = tab.page.locator(".grid .card").evaluate_all("cards => cards.map(card => card.href)")
    tab.page.get_by_role("link", name="Next →").click()
    tab.page.wait_for_url(tab.base + "/?page=2")
    assert "Page 2 of 9" in tab.page.locator(".pagination").inner_text()
    page_two = tab.page.locator(".grid .card").evaluate_all("cards => cards.map(card => card.href)")
    assert len(page_two) == 48 and not set(page_one) & set(page_two)

    tab.page.select_option("#per_page", "24")
    tab.page.get_by_role("button", name="Show").click()
    tab.page.wait_for_url(re.compile(r".*per_page=24"))
    assert tab.page.locator(".grid .card").count() == 24
    tab.page.get_by_role("link", name="Next →").click()
    tab.page.wait_for_url(tab.base + "/?page=2&per_page=24")
    assert "Page 2 of 17" in tab.page.locator(".pagination").inner_text()
    assert tab.errors == []


def test_keyboard_navigation_follows_gallery_order(tab):
    tab.open("/photos/30?per_page=24")
    tab.page.keyboard.press("ArrowRight")
    tab.page.wait_for_url(tab.base + "/photos/31?per_page=24")
    tab.page.keyboard.press("ArrowLeft")
    tab.page.wait_for_url(tab.base + "/photos/30?per_page=24")
    tab.page.keyboard.press("Escape")
    tab.page.wait_for_url(tab.base + "/?page=2&per_page=24#photo-30")
    tab.page.keyboard.press("ArrowRight")
    tab.page.wait_for_url(tab.base + "/?page=3&per_page=24")
    assert tab.errors == []


def test_everything_works_without_javascript(browser, server):
    tab = Tab(browser, server, javascript=False)
    try:
        tab.open("/?per_page=24")
        tab.page.get_by_role("link", name="Next →").click()
        tab.page.wait_for_url(tab.base + "/?page=2&per_page=24")
        tab.page.locator(".grid .card").first.click()
        tab.page.wait_for_url(tab.base + "/photos/24?per_page=24")
        assert len(_scores(tab)) == 10
        tab.page.get_by_role("link", name="← Gallery, page 2").click()
        tab.page.wait_for_url(tab.base + "/?page=2&per_page=24#photo-24")
    finally:
        tab.context.close()


def test_upload_on_the_search_page_finds_the_photo_itself(tab, holidays_dir: Path, holidays_index: Path):
    photo = next(p for p in read_index(holidays_index).photos if p["path"] == "100300.jpg")
    tab.open("/search")
    tab.page.set_input_files("#photo", str(holidays_dir / "100300.jpg"))
    tab.page.get_by_role("button", name="Find similar photos").click()
    tab.page.wait_for_selector(".similar .card")
    assert tab.page.locator("#results-heading").inner_text() == "Most similar to 100300.jpg"
    best = tab.page.locator(".similar .card").first
    assert best.get_attribute("href") == f"/photos/{photo['id']}"
    scores = _scores(tab)
    assert scores[0] >= 0.99 and scores == sorted(scores, reverse=True)
    assert tab.errors == []


def test_dropping_a_photo_on_the_search_page_uploads_it(tab, holidays_dir: Path, holidays_index: Path):
    photo = next(p for p in read_index(holidays_index).photos if p["path"] == "100500.jpg")
    tab.open("/search")
    assert tab.page.locator(".drop-hint").is_visible()  # the script announces what it adds
    tab.page.evaluate(
        """bytes => {
            const files = new DataTransfer();
            files.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
            document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
        }""",
        list((holidays_dir / "100500.jpg").read_bytes()),
    )
    tab.page.wait_for_selector(".similar .card")
    assert tab.page.locator("#results-heading").inner_text() == "Most similar to dropped.jpg"
    assert tab.page.locator(".similar .card").first.get_attribute("href") == f"/photos/{photo['id']}"
    assert tab.errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375px", "1440px"])
def test_screenshots_and_no_sideways_scrolling(browser, server, viewport, holidays_dir: Path):
    tab = Tab(browser, server, viewport=viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in [("gallery", "/"), ("photo", "/photos/7"), ("search", "/search"),
                           ("more-like-these", "/similar?like=7,8&unlike=30")]:
            _screenshot_without_sideways_scrolling(tab, path, name, viewport)
        assert tab.errors == []
    finally:
        tab.context.close()


# Folders as albums: a shop's categories, one of them named in Latin-1 (not UTF-8), browsed by clicking.

SHOP = {  # folder: imagenet-samples names starting with these
    "animals/dogs": ("n020856", "n020859", "n020860", "n020862", "n020866", "n020869", "n020870", "n020873"),
    "animals/fish": ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475"),
    os.fsdecode(b"caf\xe9"): ("n03063599", "n03062245", "n07920052", "n07930864"),  # mugs, shakers, espresso, cup
}


@pytest.fixture(scope="module")
def shop_server(imagenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """imagenet-samples photos in category folders: links, which the scan follows."""
    from precompute.build import BuildOptions, build_index

    photos = tmp_path_factory.mktemp("shop-photos")
    for folder, prefixes in SHOP.items():
        (photos / folder).mkdir(parents=True)
        for source in sorted(imagenet_dir.iterdir()):
            if source.name.startswith(prefixes):
                (photos / folder / source.name).symlink_to(source)
    index = tmp_path_factory.mktemp("shop") / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", k=6))
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, index.with_name("gunicorn.log")) as base:
        yield base


def _card_links(tab: Tab, within: str = "main") -> list[str]:
    return [link.get_attribute("href") for link in tab.page.locator(f"{within} .card").all()]


def test_browsing_folders_by_clicking(browser, shop_server):
    tab = Tab(browser, shop_server)
    try:
        tab.open("/")
        folders = [" ".join(text.split()) for text in tab.page.locator(".folders a").all_inner_texts()]
        assert folders == ["animals 13 photos", "caf\ufffd 4 photos"]
        tab.page.get_by_role("link", name="animals 13 photos").click()
        tab.page.wait_for_url(tab.base + "/folders/animals/")
        assert tab.page.locator(".breadcrumbs li").all_inner_texts()[0] == "All photos"
        tab.page.get_by_role("link", name="dogs 8 photos").click()
        tab.page.wait_for_url(tab.base + "/folders/animals/dogs/")
        assert tab.page.locator("h1").inner_text() == "dogs"
        assert tab.page.locator(".count").inner_text().startswith("8 photos")
        dogs = _card_links(tab)
        assert len(dogs) == 8
        load_every_image(tab)

        tab.page.locator(".grid .card").first.click()
        tab.page.wait_for_url(tab.base + dogs[0])
        tab.page.get_by_role("link", name="this folder").click()
        tab.page.wait_for_url(re.compile(r".*\?in=folder#similar-heading$"))
        similar = _card_links(tab, ".similar")
        assert len(similar) == 6 and set(similar) <= set(dogs) and dogs[0] not in similar
        tab.page.get_by_role("link", name="other folders").click()
        tab.page.wait_for_url(re.compile(r".*\?in=others#similar-heading$"))
        assert len(_card_links(tab, ".similar")) == 6 and not set(_card_links(tab, ".similar")) & set(dogs)

        tab.page.locator(".details .breadcrumbs").get_by_role("link", name="animals").click()
        tab.page.wait_for_url(tab.base + "/folders/animals/")
        tab.page.locator(".breadcrumbs").get_by_role("link", name="All photos").click()
        tab.page.wait_for_url(tab.base + "/")
        tab.page.get_by_role("link", name="caf\ufffd 4 photos").click()
        tab.page.wait_for_url(tab.base + "/folders/caf%E9/")
        assert tab.page.locator("h1").inner_text() == "caf\ufffd" and len(_card_links(tab)) == 4
        assert tab.errors == []
    finally:
        tab.context.close()


def test_folder_pages_page_by_keyboard_and_without_javascript(browser, shop_server):
    tab = Tab(browser, shop_server)
    try:
        tab.open("/folders/animals/dogs/?per_page=3&sort=date")
        first = _card_links(tab)
        tab.page.keyboard.press("ArrowRight")
        tab.page.wait_for_url(tab.base + "/folders/animals/dogs/?page=2&per_page=3&sort=date")
        assert len(_card_links(tab)) == 3 and not set(_card_links(tab)) & set(first)
        assert tab.errors == []
    finally:
        tab.context.close()
    plain = Tab(browser, shop_server, javascript=False)
    try:
        plain.open("/folders/animals/")
        plain.page.get_by_role("link", name="fish 5 photos").click()
        plain.page.wait_for_url(plain.base + "/folders/animals/fish/")
        plain.page.get_by_role("link", name="date taken, newest first").click()
        plain.page.wait_for_url(plain.base + "/folders/animals/fish/?sort=date")
        plain.page.select_option("#per_page", "24")
        plain.page.get_by_role("button", name="Show").click()
        plain.page.wait_for_url(plain.base + "/folders/animals/fish/?per_page=24&sort=date")
        assert len(_card_links(plain)) == 5
    finally:
        plain.context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375px", "1440px"])
def test_folder_screenshots_and_no_sideways_scrolling(browser, shop_server, viewport):
    tab = Tab(browser, shop_server, viewport=viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.open("/folders/animals/dogs/")
        photo = _card_links(tab)[0]
        for name, path in [("folder", "/folders/animals/"), ("folder-photos", "/folders/animals/dogs/"),
                           ("photo-in-folder", f"{photo}?in=folder")]:
            _screenshot_without_sideways_scrolling(tab, path, name, viewport)
        assert tab.errors == []
    finally:
        tab.context.close()


# More like these: tick photos in the gallery, ask for more like them, mark one "not like this", refine.


def _result_ids(tab: Tab) -> list[int]:
    return [int(href.rsplit("/", 1)[1]) for href in
            tab.page.eval_on_selector_all(".similar .card", "cards => cards.map(card => card.getAttribute('href'))")]


def _query(tab: Tab) -> dict[str, list[int]]:
    """The ids the result page's URL holds, by field, whether comma-separated or repeated."""
    from urllib.parse import parse_qs, urlsplit

    fields = parse_qs(urlsplit(tab.page.url).query)
    return {name: sorted(int(i) for value in fields.get(name, []) for i in value.split(",")) for name in ("like", "unlike")}


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_picking_photos_then_refining_with_not_like_this(browser, server, javascript):
    tab = Tab(browser, server, javascript=javascript)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.open("/")
        picks = tab.page.locator(".grid .pick-like input")
        liked = [int(picks.nth(i).get_attribute("value")) for i in (2, 5)]
        for i in (2, 5):
            picks.nth(i).check()
        button = tab.page.locator("#more-like-these button")
        assert button.inner_text() == ("More like these (2 liked)" if javascript else "More like these")  # counted once picking
        button.click()
        tab.page.wait_for_url("**/similar?**")
        assert _query(tab) == {"like": liked, "unlike": []}
        first = _result_ids(tab)
        assert len(first) == 24 and not set(first) & set(liked)
        assert tab.page.locator(".picked .pick-like input:checked").count() == 2

        rejected = first[0]
        tab.page.locator(f'.similar input[name="unlike"][value="{rejected}"]').check()
        if javascript:  # the two marks of a card exclude each other
            tab.page.locator(f'.similar input[name="like"][value="{rejected}"]').check()
            assert not tab.page.locator(f'.similar input[name="unlike"][value="{rejected}"]').is_checked()
            tab.page.locator(f'.similar input[name="unlike"][value="{rejected}"]').check()
            assert not tab.page.locator(f'.similar input[name="like"][value="{rejected}"]').is_checked()
        tab.page.get_by_role("button", name=re.compile("^Refine")).first.click()
        tab.page.wait_for_url(re.compile(r".*unlike=.*"))
        assert _query(tab) == {"like": liked, "unlike": [rejected]}
        refined = _result_ids(tab)
        assert rejected not in refined and not set(refined) & set(liked) and refined != first
        assert tab.page.locator(".picked .pick-unlike input:checked").count() == 1
        load_every_image(tab)
        tab.page.screenshot(path=str(SCREENSHOTS / f"more-like-these-refined-{'js' if javascript else 'nojs'}.png"), full_page=True)

        bookmarked = tab.page.url  # the URL is the whole query: opened afresh, the same results
        tab.page.goto(bookmarked)
        assert _result_ids(tab) == refined
        assert tab.errors == []
    finally:
        tab.context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_more_like_this_photo_and_a_similar_one_from_the_photo_page(browser, server, javascript):
    tab = Tab(browser, server, javascript=javascript)
    try:
        tab.open("/photos/7")
        assert tab.page.locator('#more-like-these input[name="like"][value="7"]').is_checked()
        other = tab.page.locator(".similar .pick-like input").first
        other_id = int(other.get_attribute("value"))
        other.check()
        tab.page.locator("#more-like-these button").click()
        tab.page.wait_for_url("**/similar?**")
        assert _query(tab) == {"like": sorted([7, other_id]), "unlike": []}
        assert len(_result_ids(tab)) == 24
        if javascript:  # with nothing picked the button waits
            tab.open("/")
            assert tab.page.locator("#more-like-these button").is_disabled()
        assert tab.errors == []
    finally:
        tab.context.close()


# Justified rows: the gallery's photos fill its width, keep their aspect ratios, and do not move as they load.

MIXED_SHAPES = 60  # imagenet-samples photos, in name order: landscape, portrait and square ones


@pytest.fixture(scope="module")
def mixed_server(imagenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A gallery of photos of many shapes: links (which the scan follows) to the first imagenet-samples."""
    from precompute.build import BuildOptions, build_index

    photos = tmp_path_factory.mktemp("mixed-photos")
    for source in sorted(imagenet_dir.iterdir())[:MIXED_SHAPES]:
        (photos / source.name).symlink_to(source)
    index = tmp_path_factory.mktemp("mixed") / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", k=10))
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, index.with_name("gunicorn.log")) as base:
        yield base


LAYOUT = """selector => {
    const grid = document.querySelector(selector).getBoundingClientRect();
    const boxes = Array.from(document.querySelectorAll(selector + " img")).map(image => {
        const box = image.getBoundingClientRect();
        return {left: box.left - grid.left, right: box.right - grid.left, top: box.top - grid.top,
                height: box.height, width: box.width, ratio: image.naturalWidth / image.naturalHeight};
    });
    return {width: grid.width, height: grid.height, boxes: boxes};
}"""


def _rows(layout: dict) -> list[list[dict]]:
    rows: dict[int, list[dict]] = {}
    for box in layout["boxes"]:
        rows.setdefault(round(box["top"]), []).append(box)
    return [rows[top] for top in sorted(rows)]


def _check_justified_rows(layout: dict) -> None:
    """Every row but the last spans the width at one height; photos keep their shape; the last row stays moderate."""
    rows = _rows(layout)
    assert len(rows) >= 2
    for row in rows[:-1]:
        assert row[0]["left"] == pytest.approx(0, abs=1) and row[-1]["right"] == pytest.approx(layout["width"], abs=1.5)
        assert max(box["height"] for box in row) - min(box["height"] for box in row) <= 1.5
    for box in layout["boxes"]:  # object-fit: cover crops at most a few percent
        assert box["width"] / box["height"] == pytest.approx(box["ratio"], rel=0.03)
    full_height = max(rows[-2][0]["height"], rows[0][0]["height"])
    assert rows[-1][0]["height"] <= 1.5 * full_height, "the last, incomplete row grew into giant photos"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375px", "1440px"])
def test_gallery_rows_are_justified_and_covered_by_photos(browser, mixed_server, viewport):
    tab = Tab(browser, mixed_server, viewport=viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.page.add_init_script("""window.layoutShift = 0;
            new PerformanceObserver(list => { for (const entry of list.getEntries()) window.layoutShift += entry.value; })
                .observe({type: "layout-shift", buffered: true});""")
        tab.open("/")
        assert tab.page.locator(".grid img[loading=lazy][width][height]").count() == 48  # the first page
        before = tab.page.evaluate(LAYOUT, ".grid")
        load_every_image(tab)
        after = tab.page.evaluate(LAYOUT, ".grid")
        assert [(b["left"], b["top"], b["width"]) for b in after["boxes"]] == [(b["left"], b["top"], b["width"]) for b in before["boxes"]]
        assert tab.page.evaluate("window.layoutShift") == 0
        _check_justified_rows(after)
        covered = sum(box["width"] * box["height"] for box in after["boxes"]) / (after["width"] * after["height"])
        print(f"gallery coverage at {viewport['width']}px: {covered:.3f} over {len(_rows(after))} rows")
        assert covered >= 0.9
        tab.page.screenshot(path=str(SCREENSHOTS / f"gallery-rows-{viewport['width']}.png"), full_page=True)

        tab.open("/photos/3")  # the similar list: justified rows too, each card with its name and score
        load_every_image(tab)
        _check_justified_rows(tab.page.evaluate(LAYOUT, ".similar .grid"))
        assert len(_scores(tab)) == 10 and tab.page.locator(".similar .card-name").first.is_visible()
        tab.page.screenshot(path=str(SCREENSHOTS / f"photo-rows-{viewport['width']}.png"), full_page=True)
        assert tab.errors == []
    finally:
        tab.context.close()


# A private gallery (LOOKALIKE_PASSWORD): signing in, browsing, searching and logging out in the browser.

PRIVATE_PASSWORD = "a browser's password"


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_index import build_tiny_index

    index = build_tiny_index(tmp_path_factory.mktemp("private"))
    log = index.with_name("gunicorn.log")
    env = {"LOOKALIKE_PASSWORD": PRIVATE_PASSWORD, "SECRET_KEY": "browser-test-secret-0123456789"}
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, log, env) as base:
        yield base


def test_signing_in_browsing_searching_and_logging_out(browser, private_server):
    tab = Tab(browser, private_server)
    try:
        tab.open("/photos/2")
        assert tab.path() == "/login?next=/photos/2"
        assert tab.page.locator("footer").count() == 0 and tab.page.locator(".card").count() == 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=str(SCREENSHOTS / "login-1440.png"))
        tab.page.fill("#password", "a guess")
        tab.page.get_by_role("button", name="Sign in").click()
        assert tab.page.get_by_role("alert").inner_text() == "Wrong password."

        tab.page.fill("#password", PRIVATE_PASSWORD)
        tab.page.get_by_role("button", name="Sign in").click()
        tab.page.wait_for_url(tab.base + "/photos/2")
        load_every_image(tab)
        widths = tab.page.eval_on_selector_all("main img", "images => images.map(image => image.naturalWidth)")
        assert widths and all(width > 0 for width in widths)  # thumbnails and preview came with the cookie
        cookie = next(c for c in tab.context.cookies() if c["name"] == "lookalike_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # plain http here

        tab.open("/search")
        tab.page.set_input_files("#photo", str(tab_photo(tab)))
        tab.page.get_by_role("button", name="Find similar photos").click()
        tab.page.wait_for_selector(".similar .card")

        tab.page.get_by_role("link", name="Log out").click()
        tab.page.get_by_role("button", name="Log out of this gallery").click()
        tab.page.wait_for_url(re.compile(re.escape(tab.base) + r"/login"))
        tab.open("/photos/2")
        assert tab.path().startswith("/login?next=")
        assert tab.errors == []
    finally:
        tab.context.close()


def tab_photo(tab: Tab) -> Path:
    """A photo to upload: written next to the screenshots, from the preview the gallery itself serves."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / "upload-for-private-search.jpg"
    path.write_bytes(tab.page.request.get(tab.base + "/photos/2/preview.jpg").body())
    return path


# Duplicates: groups of imagenet-samples photos and their edited copies, reviewed in the browser.

@pytest.fixture(scope="module")
def duplicates_server(near_duplicate_index, tmp_path_factory: pytest.TempPathFactory) -> str:
    index, _ = near_duplicate_index
    log = tmp_path_factory.mktemp("duplicates-gunicorn") / "gunicorn.log"
    with running_gunicorn([sys.executable, "-m", "gunicorn"], index, log) as base:
        yield base


def _group_count(tab: Tab) -> int:
    return int(re.match(r"([\d,]+) groups?", tab.page.locator(".count").inner_text()).group(1).replace(",", ""))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375px", "1440px"])
def test_reviewing_duplicates_from_the_gallery(browser, duplicates_server, viewport):
    tab = Tab(browser, duplicates_server, viewport=viewport)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.open("/")
        tab.page.get_by_role("link", name="Duplicates").click()
        tab.page.wait_for_url(tab.base + "/duplicates")
        default_groups = _group_count(tab)
        groups = tab.page.locator(".duplicate-group")
        assert groups.count() == min(20, default_groups) > 0
        for number in range(groups.count()):  # the suggested keep is the first photo of each group, and only it
            cards = groups.nth(number).locator(".described > li")
            assert cards.count() >= 2
            assert cards.first.locator(".keep").inner_text() == "Suggested keep"
            assert groups.nth(number).locator(".keep").count() == 1
            facts = cards.first.locator(".facts").inner_text()
            assert "Dimensions" in facts and "File size" in facts and "Taken" in facts and "Folder" in facts
        assert "the highest resolution" in tab.page.locator(".rule").inner_text()
        load_every_image(tab)
        widths = tab.page.eval_on_selector_all(".duplicate-group img", "images => images.map(image => image.naturalWidth)")
        assert widths and all(width > 0 for width in widths)
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"/duplicates scrolls sideways by {overflow}px"
        tab.page.screenshot(path=str(SCREENSHOTS / f"duplicates-{viewport['width']}.png"), full_page=True)

        tab.page.get_by_role("link", name="Similar shots").first.click()  # the switch from verified copies
        tab.page.wait_for_url(re.compile(re.escape(tab.base) + r"/duplicates\?kind=similar-shots"))
        similar_groups = _group_count(tab)
        tab.page.fill("#threshold", "0.60")  # a lower threshold: more look-alikes join
        tab.page.get_by_role("button", name="Show").click()
        tab.page.wait_for_url(tab.base + "/duplicates?kind=similar-shots&threshold=0.60")
        assert _group_count(tab) >= similar_groups > 0
        first = tab.page.locator(".duplicate-group .card").first
        href = first.get_attribute("href")
        first.click()
        tab.page.wait_for_url(tab.base + href)
        assert tab.errors == []
    finally:
        tab.context.close()


def test_a_bad_threshold_gets_a_page_that_says_why(browser, duplicates_server):
    tab = Tab(browser, duplicates_server, javascript=False)
    try:
        response = tab.page.goto(duplicates_server + "/duplicates?threshold=0.2")
        assert response.status == 400
        assert "from 0.50 to 1.00" in tab.page.locator("main").inner_text()
    finally:
        tab.context.close()
