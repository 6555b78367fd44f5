"""Requests that try to escape, overflow or inject: each gets a 4xx, never a file it should not, never a 5xx."""

from __future__ import annotations

from dataclasses import replace

import http.client
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import create_app
from core.index_file import read_index, thumbnail_dir_for, write_index
from tests.support.index_samples import with_path
from tests.support.live_server import running_gunicorn

GUNICORN = Path(sys.executable).with_name("gunicorn")
# Text from files a traversal could reach; none of it may ever come back.
SECRETS = ("root:x:0:0", "def create_app", "[pytest]", "lookalike-index")

TRAVERSALS = [
    "/static/../app/__init__.py",
    "/static/%2e%2e/app/__init__.py",
    "/static/%2E%2E%2Fapp%2F__init__.py",
    "/static/%252e%252e/app/__init__.py",
    "/static/%252e%252e%252fapp%252f__init__.py",
    "/static/..%2fapp%2f__init__.py",
    "/static/..%5capp%5c__init__.py",
    "/static/..\\app\\__init__.py",
    "/static/....//app/__init__.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%c0%af..%c0%afetc/passwd",
    "/static/%00../pytest.ini",
    "/static/style.css%00.py",
    "/photos/0/../../../../etc/passwd",
    "/photos/0/..%2f..%2f..%2fetc%2fpasswd",
    "/photos/0/%2e%2e%2f%2e%2e%2fpytest.ini",
    "/photos/0/thumb.jpg/../../../pytest.ini",
    "/photos/0/..%5c..%5cpytest.ini",
    "/photos/%2e%2e/original",
    "/photos/..%2f..%2fetc%2fpasswd/original",
    "/photos/0/original/../../../pytest.ini",
    "/photos/0/..%252f..%252fetc%252fpasswd.jpg",
    "/api/photos/..%2f..%2f/similar",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/index.pkl",
    "/data/index.pkl",
]

# Query strings naming files are ignored: the answer is the photo's own file.
IGNORED_QUERIES = ["/photos/0/original?path=../../../../etc/passwd", "/photos/0/thumb.jpg?file=/etc/passwd"]

BAD_IDS = [
    "/photos/-1", "/photos/999999", "/photos/99999999999999999999999999999", "/photos/abc", "/photos/1.5",
    "/photos/0x1", "/photos/%20", "/photos/1%00", "/photos/-1/thumb.jpg", "/photos/999999/preview.jpg",
    "/photos/0/huge.jpg", "/photos/999999/original", "/photos/-5/original", "/api/photos/-1/similar",
    "/api/photos/abc/similar", "/api/photos/999999/similar",
    # Other spellings of existing ids: each used to be a page of its own, cached as such.
    "/photos/00001", "/photos/01/thumb.jpg", "/photos/00/original", "/api/photos/001/similar",
    "/photos/%EF%BC%91", "/photos/%D9%A1", "/photos/%DB%B1/preview.jpg", "/photos/+1", "/photos/1_0",
]

BAD_PAGES = [
    "/?page=0", "/?page=-1", "/?page=abc", "/?page=99999", "/?page=999999999", "/?page=" + "9" * 40,
    "/?page=1e9", "/?page=%00", "/?page=", "/?per_page=0", "/?per_page=-3", "/?per_page=" + "9" * 40,
    "/?per_page=abc", "/photos/0?per_page=" + "9" * 40, "/?page=１",  # a full-width digit
    "/?page=²", "/?per_page=٣",  # digits to str.isdigit, not to int()
]


@pytest.fixture(scope="module")
def client(holidays_index: Path):
    return create_app(holidays_index).test_client()


def assert_refused(status: int, body: bytes, url: str) -> None:
    assert 400 <= status < 500, f"{url}: {status}"
    text = body.decode("utf-8", "replace")
    assert not any(secret in text for secret in SECRETS), f"{url} leaked a file"


@pytest.mark.parametrize("url", TRAVERSALS + BAD_IDS + BAD_PAGES)
def test_refused_by_the_app(client, url):
    response = client.get(url, follow_redirects=True)  # werkzeug redirects `//` to `/`: follow it to the end
    assert_refused(response.status_code, response.data, url)


@pytest.mark.parametrize("url", IGNORED_QUERIES)
def test_file_names_in_the_query_are_ignored(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.data == client.get(url.partition("?")[0]).data
    assert not any(secret.encode() in response.data for secret in SECRETS)


def test_ids_and_pages_that_exist_still_work(client, holidays_index):
    index = read_index(holidays_index)
    last = index.photos[-1]["id"]
    for url in ("/", "/?page=2&per_page=100", "/?per_page=100000", f"/photos/{last}", f"/photos/{last}/thumb.jpg",
                f"/photos/{last}/original", f"/api/photos/{last}/similar", "/static/style.css"):
        response = client.get(url)
        assert response.status_code == 200, url
        response.close()


def test_api_errors_are_json(client):
    response = client.get("/api/photos/999999/similar")
    assert response.status_code == 404 and response.json["error"] == "Not Found"


def test_other_methods_are_refused(client):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/photos/0").status_code == 405


@pytest.fixture(scope="module")
def evil_index(holidays_index: Path) -> tuple[Path, int]:
    """The holidays index with one photo renamed to carry markup; next to the original, to share its thumbnails."""
    index = with_path(read_index(holidays_index), 0, 'evil"><script>alert(1)</script><img src=x onerror=alert(2)>.jpg')
    path = holidays_index.with_name("evil-index.pkl")
    index = replace(index, thumbnail_dir=holidays_index.stem + "-thumbnails")
    write_index(index, path)
    return path, index.photos[0]["id"]


def test_markup_in_a_file_name_is_escaped(evil_index):
    path, photo_id = evil_index
    client = create_app(path).test_client()
    for url in ("/", f"/photos/{photo_id}", f"/photos/{index_neighbour(path, photo_id)}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def index_neighbour(path: Path, photo_id: int) -> int:
    """A photo whose similar list shows the evil one."""
    index = read_index(path)
    row = next(r for r, p in enumerate(index.photos) if p["id"] == photo_id)
    neighbour_row = next(r for r, ns in enumerate(index.neighbours) if row in ns.tolist())
    return index.photos[neighbour_row]["id"]


@pytest.mark.parametrize("url", ["/", "/photos/0", "/photos/0/thumb.jpg", "/photos/999999", "/api/photos/0/similar",
                                 "/static/style.css", "/healthz"])
def test_security_headers(client, url):
    response = client.get(url)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(
        (part.split()[0], part.split()[1:]) for part in response.headers["Content-Security-Policy"].split(";") if part.strip()
    )
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "img-src"):
        assert policy.get(directive, policy["default-src"]) == ["'self'"], directive
    assert policy["object-src"] == ["'none'"]
    response.close()


# The same attacks byte for byte over a real socket, where no test client can tidy the URL first.


@pytest.fixture(scope="module")
def server(holidays_index: Path, tmp_path_factory) -> int:
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with running_gunicorn([str(GUNICORN)], holidays_index, log) as base:
        yield urlsplit(base).port


def raw_get(port: int, url: str, redirects: int = 3) -> tuple[int, bytes]:
    """GET `url` exactly as written; follow redirects, which must stay on this server."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", url, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        status, body, location = response.status, response.read(), response.getheader("Location", "")
    finally:
        connection.close()
    if status in (301, 302, 307, 308) and redirects:
        target = urlsplit(location)
        assert target.hostname in (None, "127.0.0.1"), f"{url} redirects off the server: {location}"
        return raw_get(port, target.path + (f"?{target.query}" if target.query else ""), redirects - 1)
    return status, body


def test_refused_by_gunicorn(server):
    for url in TRAVERSALS + BAD_IDS + BAD_PAGES:
        if "\\" in url or not url.isascii():
            continue  # not valid on the wire; http.client refuses to send them
        status, body = raw_get(server, url)
        assert_refused(status, body, url)
    assert raw_get(server, "/healthz")[0] == 200


@pytest.fixture
def own_copy(tiny_index: Path, tmp_path: Path) -> Path:
    """The tiny index with its own photos and thumbnails, for tests that change files under a running server."""
    index = read_index(tiny_index)
    shutil.copytree(index.photo_root, tmp_path / "photos")
    shutil.copytree(thumbnail_dir_for(tiny_index), thumbnail_dir_for(tmp_path / "index.pkl"))
    write_index(replace(index, photo_root=str(tmp_path / "photos")), tmp_path / "index.pkl")
    return tmp_path / "index.pkl"


def test_a_file_swapped_for_a_symlink_after_it_was_served_is_not_served(own_copy: Path, tmp_path: Path):
    """Containment is decided when a file is opened, on every request, not remembered from the first."""
    index = read_index(own_copy)
    photo = index.photos[0]
    original = Path(index.photo_root) / photo["path"]
    thumbnail = thumbnail_dir_for(own_copy) / photo["thumbnails"]["thumb"]["file"]
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    urls = {original: f"/photos/{photo['id']}/original", thumbnail: f"/photos/{photo['id']}/thumb.jpg"}
    with running_gunicorn([str(GUNICORN)], own_copy, tmp_path / "gunicorn.log") as base:
        port = urlsplit(base).port
        for path, url in urls.items():
            status, body = raw_get(port, url)
            assert status == 200 and body == path.read_bytes(), url
        sibling = Path(index.photo_root) / index.photos[1]["path"]
        original.unlink()
        original.symlink_to(sibling)  # a link that stays inside the folder is still served
        assert raw_get(port, urls[original]) == (200, sibling.read_bytes())
        for path, url in urls.items():
            path.unlink()
            path.symlink_to(secret)
            assert_refused(*raw_get(port, url), url)
            assert raw_get(port, url)[0] == 404


def test_a_file_name_with_a_newline_is_served(own_copy: Path):
    """A header cannot hold a line break: the download name gets an underscore instead of a 500."""
    index = read_index(own_copy)
    photo = index.photos[0]
    root = Path(index.photo_root)
    (root / photo["path"]).rename(root / "new\nline\r.jpg")
    write_index(with_path(index, 0, "new\nline\r.jpg"), own_copy)
    response = create_app(own_copy).test_client().get(f"/photos/{photo['id']}/original")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "inline; filename=new_line_.jpg"


def get_with_host(port: int, url: str, host: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", url, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("base_url", ["", "https://photos.example.com"])
def test_the_host_header_is_never_reflected(tiny_index: Path, tmp_path: Path, base_url: str):
    """JSON links and Werkzeug's own redirects use paths (or LOOKALIKE_BASE_URL), not the Host a client sent."""
    index = read_index(tiny_index)
    env = {"LOOKALIKE_BASE_URL": base_url} if base_url else {}
    with running_gunicorn([str(GUNICORN)], tiny_index, tmp_path / "gunicorn.log", env) as base:
        port = urlsplit(base).port
        status, _, body = get_with_host(port, "/api/photos/0/similar", "evil.example")
        assert status == 200 and b"evil.example" not in body
        similar = json.loads(body)["similar"]
        by_id = {photo["id"]: photo for photo in index.photos}
        for item in similar:
            assert item["url"] == f"{base_url}/photos/{item['id']}"
            # The thumbnail is cached for a year, so its URL names the content, as the pages' do.
            assert item["thumbnail"] == f"{base_url}/photos/{item['id']}/thumb.jpg?v={by_id[item['id']]['sha1'][:12]}"
        status, headers, _ = get_with_host(port, "/photos//0", "evil.example")
        assert status in (301, 308) and headers["Location"] == f"{base_url}/photos/0"


@pytest.mark.parametrize("value", ["photos.example.com", "ftp://photos.example.com", "https://photos.example.com/?a=1"])
def test_a_base_url_must_be_a_site_url(tiny_index: Path, value: str, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_BASE_URL", value)
    with pytest.raises(SystemExit):
        create_app(tiny_index)
    assert "LOOKALIKE_BASE_URL must be an http:// or https:// URL" in capsys.readouterr().err
