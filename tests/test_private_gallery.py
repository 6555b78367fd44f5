"""Private galleries: with a password set, nothing of the collection reaches anyone who has not signed in.

Flask's test client covers each rule; a real gunicorn checks the same from
outside, the page cache in front of Flask included.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import template_rendered
from werkzeug.security import check_password_hash, generate_password_hash

from app import access, create_app
from app.users import read_users_file
from tests.support.live_server import ROOT, running_gunicorn
from tests.support.tiny_index import build_tiny_index

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-key-0123456789abcdef"
PROTECTED_PAGES = ["/", "/?page=2&per_page=10", "/photos/1", "/photos/1/thumb.jpg", "/photos/1/preview.jpg",
                   "/photos/1/original", "/search", "/similar?like=1,2&unlike=3", "/logout", "/photos/99999", "/no-such-page",
                   "/folders/album-000/", "/folders/caf%E9/", "/?sort=date", "/photos/1?in=folder", "/duplicates",
                   "/duplicates/groups/1"]
PROTECTED_API = ["/api/photos/1/similar", "/api/photos/99999/similar", "/api/similar?like=1", "/api/duplicates",
                 "/api/duplicates/groups/1",
                 "/api/anything"]


def basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def private_env(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_PASSWORD", PASSWORD)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("LOOKALIKE_USERS_FILE", raising=False)


@pytest.fixture
def app(private_env, synthetic_index):
    return create_app(synthetic_index)


def csrf_token(client, url: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)


def sign_in(client, password: str = PASSWORD, target: str = "/", **fields):
    return client.post("/login", data={"csrf_token": csrf_token(client), "password": password, "next": target, **fields})


@pytest.mark.parametrize("url", PROTECTED_PAGES)
@pytest.mark.slow
def test_pages_send_strangers_to_sign_in(app, url):
    response = app.test_client().get(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login" and location.query  # next= the page they asked for
    assert response.headers["Cache-Control"].startswith("private")


@pytest.mark.parametrize("url", PROTECTED_API)
def test_api_answers_strangers_401_json(app, url):
    response = app.test_client().get(url)
    assert response.status_code == 401
    assert response.json["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_uploads_are_refused_to_strangers(app):
    client = app.test_client()
    assert client.post("/api/search", data={}).status_code == 401
    assert client.post("/search", data={}).status_code == 302


def test_healthz_answers_without_telling_the_size(app, synthetic_index, monkeypatch):
    private = app.test_client().get("/healthz")
    assert private.status_code == 200 and private.json == {"status": "ok"}
    monkeypatch.delenv("LOOKALIKE_PASSWORD")
    assert create_app(synthetic_index).test_client().get("/healthz").json == {"status": "ok", "photos": 120}


def test_static_files_stay_public(app):
    assert app.test_client().get("/static/style.css").status_code == 200


def test_the_sign_in_page_shows_nothing_of_the_collection(app):
    page = app.test_client().get("/login").text
    assert "120 photos" not in page and "synthetic" not in page and "/photos/" not in page
    assert 'type="password"' in page and 'name="name"' not in page  # one password: no name to ask


def test_signing_in_leads_back_with_a_private_cookie(app):
    client = app.test_client()
    response = sign_in(client, target="/photos/3?per_page=24")
    assert response.status_code == 302 and response.headers["Location"] == "/photos/3?per_page=24"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    for url in ("/", "/photos/3", "/photos/3/thumb.jpg", "/photos/3/preview.jpg", "/api/photos/3/similar"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "private" in page.headers["Cache-Control"] and "public" not in page.headers["Cache-Control"], url
    assert "immutable" in client.get("/photos/3/thumb.jpg").headers["Cache-Control"]


def test_wrong_password_and_missing_token_are_refused(app):
    client = app.test_client()
    wrong = sign_in(client, password="guess")
    assert wrong.status_code == 200 and "Wrong password." in wrong.text
    no_token = client.post("/login", data={"password": PASSWORD})
    assert no_token.status_code == 400 and "expired" in no_token.text
    assert client.get("/").status_code == 302


def test_log_out_needs_the_form_and_ends_the_session(app):
    client = app.test_client()
    sign_in(client)
    assert client.post("/logout").status_code == 400  # no CSRF token: another site cannot sign you out
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")}).status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "http:evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", "javascript:alert(1)", " //evil.example", "evil.example", "",
    "///evil.example",
])
@pytest.mark.slow
def test_next_never_leaves_the_site(app, target):
    client = app.test_client()
    response = sign_in(client, target=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_basic_auth_serves_api_clients(app, synthetic_index):
    client = app.test_client()
    for url in ("/api/photos/1/similar", "/api/similar?like=1", "/api/duplicates", "/photos/1/thumb.jpg", "/",
                "/photos/1", "/similar?like=1", "/duplicates"):
        response = client.get(url, headers=basic("lookalike", PASSWORD))
        assert response.status_code == 200, url
        assert "private" in response.headers["Cache-Control"] and "public" not in response.headers["Cache-Control"], url
        assert "Set-Cookie" not in response.headers  # not a session: every call carries its password
    wrong = client.get("/api/photos/1/similar", headers=basic("lookalike", "guess"))
    assert wrong.status_code == 401 and wrong.json["error"] == "Unauthorized"
    assert client.get("/photos/1", headers=basic("nobody", PASSWORD)).status_code == 401


def test_named_users_from_a_users_file(tmp_path, synthetic_index, monkeypatch):
    users = tmp_path / "users"
    users.write_text(f"# friends\nalice:{generate_password_hash('alice pw')}\n\nbob:{generate_password_hash('bob pw')}\n")
    monkeypatch.setenv("LOOKALIKE_USERS_FILE", str(users))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("LOOKALIKE_PASSWORD", raising=False)
    client = create_app(synthetic_index).test_client()
    assert 'name="name"' in client.get("/login").text
    assert client.get("/api/photos/1/similar", headers=basic("bob", "bob pw")).status_code == 200
    assert client.get("/api/photos/1/similar", headers=basic("bob", "alice pw")).status_code == 401
    assert "do not match" in sign_in(client, password="alice pw", name="bob").text
    assert sign_in(client, password="alice pw", name="alice").status_code == 302
    assert client.get("/").status_code == 200


def test_a_changed_password_ends_old_sessions(tmp_path, synthetic_index, monkeypatch):
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash('old')}\n")
    monkeypatch.setenv("LOOKALIKE_USERS_FILE", str(users))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    client = create_app(synthetic_index).test_client()
    sign_in(client, password="old", name="alice")
    cookie = client.get_cookie("lookalike_session").value
    users.write_text(f"alice:{generate_password_hash('new')}\n")
    later = create_app(synthetic_index).test_client()
    later.set_cookie("lookalike_session", cookie)
    assert later.get("/").status_code == 302


PBKDF2 = "pbkdf2:sha256:1000"  # few rounds, for speed: what matters is that every check uses these same ones


def _method(password_hash: str) -> str:
    return password_hash.partition("$")[0]


@pytest.mark.parametrize("others", [0, 1], ids=["pbkdf2 only", "pbkdf2 and one scrypt"])
def test_unknown_names_are_checked_against_a_hash_of_the_users_own_method(tmp_path, synthetic_index, monkeypatch, others):
    """No timing: every password check, known name or not, verifies a hash of the method most users' hashes use."""
    users = tmp_path / "users"
    lines = [f"{name}:{generate_password_hash(name + ' pw', PBKDF2)}" for name in ("alice", "bob")]
    lines += [f"carol:{generate_password_hash('carol pw')}"] * others  # scrypt, werkzeug's default
    users.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("LOOKALIKE_USERS_FILE", str(users))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("LOOKALIKE_PASSWORD", raising=False)
    checked = []

    def observed(password_hash: str, password: str) -> bool:
        checked.append(_method(password_hash))
        return check_password_hash(password_hash, password)

    monkeypatch.setattr(access, "check_password_hash", observed)
    client = create_app(synthetic_index).test_client()
    assert client.get("/api/duplicates", headers=basic("mallory", "alice pw")).status_code == 401
    assert "do not match" in sign_in(client, password="bob pw", name="nobody").text
    assert client.get("/api/duplicates", headers=basic("alice", "guess")).status_code == 401
    assert checked == [PBKDF2] * 3  # unknown, unknown, known: the same work
    assert client.get("/api/duplicates", headers=basic("bob", "bob pw")).status_code == 200


@pytest.mark.slow
def test_failed_sign_ins_are_limited_per_client(app):
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "192.0.2.1"
    for _ in range(access.CLIENT_FAILURES):
        assert "Wrong password." in sign_in(stranger, password="guess").text
    limited = sign_in(stranger)  # even the right password, while the limit holds
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in limited.text
    api = app.test_client()
    api.environ_base["REMOTE_ADDR"] = "192.0.2.1"
    refused = api.get("/api/photos/1/similar", headers=basic("lookalike", PASSWORD))
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    friend = app.test_client()
    friend.environ_base["REMOTE_ADDR"] = "192.0.2.2"
    assert sign_in(friend).status_code == 302  # another address is not held back


@pytest.mark.slow
def test_failed_sign_ins_are_limited_per_name(app):
    for number in range(access.NAME_FAILURES):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
        assert client.get("/api/photos/1/similar", headers=basic("lookalike", "guess")).status_code == 401
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert fresh.get("/api/photos/1/similar", headers=basic("lookalike", PASSWORD)).status_code == 429


def test_the_failure_window_slides():
    now = [1000.0]
    failures = access.FailedSignIns(limit=2, window_s=60, max_keys=2, clock=lambda: now[0])
    failures.record("a")
    now[0] += 30
    failures.record("a")
    assert failures.wait_s("a") == pytest.approx(30)
    now[0] += 31
    assert failures.wait_s("a") == 0  # the first failure aged out
    failures.record("b")
    failures.record("c")  # over max_keys: the least recently failing key goes
    failures.record("c")
    assert failures.wait_s("a") == 0 and failures.wait_s("c") > 0


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory) -> Path:
    """Photos indexed by a real model, so that search by photo is on and its form is shown."""
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


def test_forms_need_their_csrf_token_when_signed_in(private_env, tiny_index):
    client = create_app(tiny_index).test_client()
    sign_in(client)
    assert 'name="csrf_token"' in client.get("/search").text
    no_token = client.post("/search", data={})
    assert no_token.status_code == 400 and "CSRF" in no_token.text
    api_no_token = client.post("/api/search", data={})
    assert api_no_token.status_code == 400 and "CSRF" in api_no_token.json["detail"]
    with_token = client.post("/search", data={"csrf_token": csrf_token(client, "/search")})
    assert "CSRF" not in with_token.text  # past the check: search itself answers (no photo, or search off)


def test_basic_auth_api_uploads_need_no_csrf_token(app):
    response = app.test_client().post("/api/search", data={}, headers=basic("lookalike", PASSWORD))
    assert response.status_code in (400, 503) and "CSRF" not in response.json["detail"]


FOREIGN = [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Referer": "https://evil.example/page"},
           {"Origin": "http://localhost.evil.example"}]


@pytest.mark.parametrize("path", ["/search", "/logout", "/api/search"])
@pytest.mark.parametrize("foreign", FOREIGN, ids=lambda headers: "=".join(*headers.items()))
@pytest.mark.slow
def test_basic_auth_posts_from_another_site_are_refused(app, path, foreign):
    """A browser replays cached Basic credentials with another site's form: its Origin (or Referer) gives it away."""
    client = app.test_client()
    response = client.post(path, data={}, headers={**basic("lookalike", PASSWORD), **foreign})
    assert response.status_code == 403 and "another site" in response.text
    assert client.get("/", headers=basic("lookalike", PASSWORD)).status_code == 200  # GETs are unaffected


def test_basic_auth_posts_from_this_site_or_a_script_pass(app):
    client = app.test_client()
    for headers in ({}, {"Origin": "http://localhost"}, {"Referer": "http://localhost/search"}):
        response = client.post("/api/search", data={}, headers={**basic("lookalike", PASSWORD), **headers})
        assert response.status_code in (400, 503) and "CSRF" not in response.json["detail"], headers
    # The HTML forms are a browser's, and carry their token: without it, a 400, with it, through.
    no_token = client.post("/logout", headers=basic("lookalike", PASSWORD))
    assert no_token.status_code == 400 and "CSRF" in no_token.text
    page = client.get("/logout", headers=basic("lookalike", PASSWORD)).text  # the form, as a Basic browser gets it
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    signed_out = client.post("/logout", data={"csrf_token": token},
                             headers={**basic("lookalike", PASSWORD), "Origin": "http://localhost"})
    assert signed_out.status_code == 302


def test_cookies_are_secure_over_https(app, synthetic_index, monkeypatch):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login", base_url="https://localhost").text)[1]
    response = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                           data={"csrf_token": token, "password": PASSWORD})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]
    # Behind a trusted proxy (Heroku's router, or LOOKALIKE_TRUSTED_PROXIES) the proxy's X-Forwarded-Proto counts.
    monkeypatch.setenv("LOOKALIKE_TRUSTED_PROXIES", "1")
    proxied = create_app(synthetic_index).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.9"}
    page = proxied.get("/login", headers=forwarded)
    assert "Secure" in page.headers["Set-Cookie"]


def test_an_untrusted_forwarded_proto_is_ignored(app):
    page = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in page.headers["Set-Cookie"]


def test_a_session_follows_its_browser_to_another_address(app):
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = "192.0.2.20"
    sign_in(phone)
    phone.environ_base["REMOTE_ADDR"] = "198.51.100.20"  # the phone changed networks
    page = phone.get("/photos/4")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers  # so the page cache may keep it


def test_kept_pages_go_only_to_signed_in_browsers(app):
    member = app.test_client()
    sign_in(member)
    rendered: list[str] = []
    with template_rendered.connected_to(lambda sender, template, **extra: rendered.append(template.name), app):
        first = member.get("/photos/5")
        again = member.get("/photos/5")
    assert first.status_code == again.status_code == 200 and first.data == again.data
    assert rendered == ["photo.html"]  # the second came from the page cache
    assert app.extensions["lookalike.pages"].bytes > 0
    assert "Set-Cookie" not in again.headers
    assert app.test_client().get("/photos/5").status_code == 302
    assert app.test_client().get("/photos/5", headers=basic("lookalike", "guess")).status_code == 401
    assert app.test_client().get("/photos/5", headers=basic("lookalike", PASSWORD)).status_code == 200


@pytest.mark.parametrize("env, message", [
    ({"LOOKALIKE_PASSWORD": PASSWORD}, "SECRET_KEY must be set"),
    ({"LOOKALIKE_PASSWORD": PASSWORD, "SECRET_KEY": "short"}, "SECRET_KEY must be set"),
    ({"LOOKALIKE_PASSWORD": "", "SECRET_KEY": SECRET}, "LOOKALIKE_PASSWORD is set but empty"),
    ({"LOOKALIKE_USERS_FILE": "/nonexistent/users", "SECRET_KEY": SECRET}, "cannot read LOOKALIKE_USERS_FILE"),
    ({"LOOKALIKE_ORIGINALS": "some", "SECRET_KEY": SECRET}, "LOOKALIKE_ORIGINALS must be one of"),
    ({"LOOKALIKE_TRUSTED_PROXIES": "yes"}, "LOOKALIKE_TRUSTED_PROXIES must be"),
])
def test_bad_settings_stop_the_app_with_one_line(synthetic_index, monkeypatch, capsys, env, message):
    for name in ("LOOKALIKE_PASSWORD", "LOOKALIKE_USERS_FILE", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        create_app(synthetic_index)
    assert stopped.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("lookalike: cannot start: ") and message in err and err.count("\n") == 1
    assert PASSWORD not in err


@pytest.mark.parametrize("method", ["pbkdf2:md99:1000", "pbkdf2:sha256:0", "pbkdf2:sha256:99999999999999999999999",
                                    "pbkdf2:sha256:many", "scrypt:3:8:1", "scrypt:-2:8:1", "scrypt:32768:8"])
def test_a_hash_werkzeug_cannot_compute_stops_the_app_naming_its_line(tmp_path, synthetic_index, monkeypatch, capsys,
                                                                      method):
    """Not a 500 when that user signs in: one line at start, exit status 4."""
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash('alice pw')}\n# bob\nbob:{method}$s4lt$0123abcd\n")
    monkeypatch.setenv("LOOKALIKE_USERS_FILE", str(users))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("LOOKALIKE_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as stopped:
        create_app(synthetic_index).test_client().get("/api/duplicates", headers=basic("bob", "bob pw"))
    assert stopped.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("lookalike: cannot start: LOOKALIKE_USERS_FILE line 3: werkzeug cannot check a password")
    assert f"method {method!r}" in err and err.count("\n") == 1
    assert "0123abcd" not in err and "s4lt" not in err


@pytest.mark.parametrize("text, message", [
    ("alice\n", "line 1 is not `name:hash`"),
    ("alice:plaintext\n", "line 1 is not `name:hash`"),
    (f":{generate_password_hash('x')}\n", "line 1 is not `name:hash`"),
    (f"a:{generate_password_hash('x')}\na:{generate_password_hash('y')}\n", "line 2 repeats the user 'a'"),
    ("# nobody\n", "names no user"),
])
def test_users_file_problems_are_named(tmp_path, text, message):
    users = tmp_path / "users"
    users.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_users_file(users)


def test_the_hash_command_makes_a_users_file_line(tmp_path):
    made = subprocess.run([sys.executable, "-m", "app.users", "hash", "carol"], input="carol's pw\n", cwd=ROOT,
                          capture_output=True, text=True, check=True)
    line = made.stdout.strip()
    name, _, password_hash = line.partition(":")
    assert name == "carol" and check_password_hash(password_hash, "carol's pw")
    users = tmp_path / "users"
    users.write_text(line + "\n")
    assert read_users_file(users) == {"carol": password_hash}
    empty = subprocess.run([sys.executable, "-m", "app.users", "hash"], input="\n", cwd=ROOT, capture_output=True, text=True)
    assert empty.returncode == 1 and "empty" in empty.stderr


# A real gunicorn, asked over HTTP from outside.

GUNICORN = [sys.executable, "-m", "gunicorn"]


@pytest.fixture(scope="module")
def private_server(synthetic_index, tmp_path_factory):
    log = tmp_path_factory.mktemp("private") / "gunicorn.log"
    with running_gunicorn(GUNICORN, synthetic_index, log, {"LOOKALIKE_PASSWORD": PASSWORD, "SECRET_KEY": SECRET}) as base:
        yield base


def _request(base: str, method: str, path: str, headers: dict | None = None, body: str | None = None):
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_live_strangers_get_nothing(private_server):
    for path in PROTECTED_PAGES:
        status, headers, body = _request(private_server, "GET", path)
        assert status == 302 and headers["Location"].startswith("/login?next="), path
        assert b"synthetic" not in body and b"120 photos" not in body
    for path in PROTECTED_API:
        status, headers, body = _request(private_server, "GET", path)
        assert status == 401 and b'"Unauthorized"' in body and "WWW-Authenticate" in headers, path
    status, _, body = _request(private_server, "GET", "/healthz")
    assert status == 200 and b"photos" not in body


def test_live_sign_in_then_cached_pages_stay_private(private_server):
    status, headers, body = _request(private_server, "GET", "/login?next=/photos/2")
    cookie = headers["Set-Cookie"].split(";")[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body)[1].decode()
    form = f"csrf_token={token}&password={PASSWORD.replace(' ', '+')}&next=/photos/2"
    status, headers, _ = _request(private_server, "POST", "/login", body=form, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302 and headers["Location"] == "/photos/2"
    session = {"Cookie": headers["Set-Cookie"].split(";")[0]}
    for _ in range(3):  # the first renders and is kept; the rest come from the page cache
        status, headers, body = _request(private_server, "GET", "/photos/2", headers=session)
        assert status == 200 and headers["Cache-Control"] == "private" and "Set-Cookie" not in headers
    assert _request(private_server, "GET", "/photos/2")[0] == 302
    assert _request(private_server, "GET", "/photos/2", headers={"Cookie": "lookalike_session=forged"})[0] == 302
    status, headers, _ = _request(private_server, "GET", "/photos/2/thumb.jpg", headers=basic("lookalike", PASSWORD))
    assert status == 200 and "private" in headers["Cache-Control"] and "public" not in headers["Cache-Control"]


def test_live_basic_auth_posts_from_another_site_are_refused(private_server):
    form = {**basic("lookalike", PASSWORD), "Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/search", "/logout", "/api/search"):
        status, _, body = _request(private_server, "POST", path, {**form, "Origin": "https://evil.example"}, "")
        assert status == 403 and b"another site" in body, path
    status, _, body = _request(private_server, "POST", "/api/search", form, "")  # a script: no Origin, no token
    assert status in (400, 503) and b"CSRF" not in body


def test_live_gunicorn_refuses_a_password_without_secret_key(synthetic_index):
    command = [*GUNICORN, "--bind", "127.0.0.1:0", "app:create_app()"]
    env = {**{name: value for name, value in os.environ.items() if name != "SECRET_KEY"},
           "LOOKALIKE_INDEX": str(synthetic_index), "LOOKALIKE_PASSWORD": PASSWORD}
    stopped = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert stopped.returncode != 0
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("lookalike:")]
    assert lines == [lines[0]] and "SECRET_KEY must be set" in lines[0]
    assert "Traceback" not in stopped.stderr
