"""Private galleries: with a password configured, every route but /login, /healthz and static files asks for it.

Browsers sign in on /login and get a signed session cookie (Flask's, keyed
by SECRET_KEY; Flask-Login keeps the user in it); API clients send HTTP
Basic with every request. Passwords are checked with werkzeug.security,
forms carry Flask-WTF's CSRF token, and failed sign-ins are rate-limited
per client address and per user name (see FailedSignIns).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from app.settings import Settings
from app.users import SHARED_USER

CLIENT_FAILURES = 10  # failed sign-ins one client address may make within the window, per worker
NAME_FAILURES = 30  # failed sign-ins for one user name, from anywhere, within the window, per worker
FAILURE_WINDOW_S = 10 * 60
SESSION_LIFETIME = timedelta(days=14)
BASIC_REUSE_S = 5 * 60  # a Basic password verified once is trusted again for this long, unhashed
MIN_SECRET_KEY_CHARS = 16
REALM = 'Basic realm="Lookalike", charset="UTF-8"'
OPEN_ENDPOINTS = frozenset({"static", "access.login", "pages.healthz"})  # answered to anyone
_SESSION_USER_KEY = "_user_id"  # where Flask-Login keeps the signed-in user's id in the session
_CSRF_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

access_pages = Blueprint("access", __name__)


class FailedSignIns:
    """Failed attempts per key (a client address or a user name) within a sliding window.

    Kept in the worker's memory: each gunicorn worker counts on its own. At
    most `max_keys` keys are kept, the least recently failing dropped first,
    so a flood of made-up names cannot grow it without bound.
    """

    def __init__(self, limit: int, window_s: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self.max_keys, self.clock = limit, window_s, max_keys, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(key)
            if len(times) < self.limit:
                return 0.0
            return max(0.0, times[0] + self.window_s - self.clock())

    def record(self, key: str) -> None:
        with self._lock:
            times = self._recent(key)
            times.append(self.clock())
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key, deque(maxlen=self.limit))
        while times and times[0] <= self.clock() - self.window_s:
            times.popleft()
        return times


@dataclass(frozen=True)
class Verdict:
    user: str | None  # who signed in, or None
    wait_s: float = 0.0  # when refused for too many failures: seconds until the next try is allowed


class Users:
    """The configured users and their password hashes, with the rate limits on guessing them."""

    def __init__(self, hashes: dict[str, str]):
        self.hashes = hashes
        self.clients = FailedSignIns(CLIENT_FAILURES, FAILURE_WINDOW_S)
        self.names = FailedSignIns(NAME_FAILURES, FAILURE_WINDOW_S)
        self._reuse_key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()  # HMAC of name and password → until when
        self._lock = threading.Lock()
        self._unknown_user_hash = _unknown_user_hash(commonest_method(hashes))

    def verify(self, name: str, password: str, client: str) -> Verdict:
        """Check a password, unless this client or this name has failed too often lately."""
        wait = max(self.clients.wait_s(client), self.names.wait_s(name))
        if wait > 0:
            return Verdict(None, wait)
        if self._verified_lately(name, password):
            return Verdict(name)
        known = self.hashes.get(name)
        if check_password_hash(known or self._unknown_user_hash, password) and known is not None:
            self.clients.forget(client)
            self._remember(name, password)
            return Verdict(name)
        self.clients.record(client)
        self.names.record(name)
        return Verdict(None)

    def session_user(self, user_id: str) -> "User | None":
        """The user a session names, if they still exist with the same password."""
        fingerprint, _, name = user_id.partition(":")
        if fingerprint and hmac.compare_digest(fingerprint, self.fingerprint(name) or ""):
            return User(name, fingerprint)
        return None

    def fingerprint(self, name: str) -> str | None:
        """A short digest of the user's hash, kept in the session: a changed password ends old sessions."""
        known = self.hashes.get(name)
        return None if known is None else hashlib.sha256(known.encode()).hexdigest()[:16]

    def _digest(self, name: str, password: str) -> bytes:
        text = f"{name}\x00{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._reuse_key, text, hashlib.sha256).digest()

    def _verified_lately(self, name: str, password: str) -> bool:
        """Basic auth sends the password with every request; hashing it each time would cost ~50 ms of CPU."""
        with self._lock:
            until = self._verified.get(self._digest(name, password))
            return until is not None and until > time.monotonic()

    def _remember(self, name: str, password: str) -> None:
        with self._lock:
            self._verified[self._digest(name, password)] = time.monotonic() + BASIC_REUSE_S
            while len(self._verified) > 1024:
                self._verified.popitem(last=False)


def commonest_method(hashes: dict[str, str]) -> str:
    """The method most of the users' hashes use, with its parameters (`pbkdf2:sha256:600000`), the first one on a tie."""
    methods = Counter(password_hash.partition("$")[0] for password_hash in hashes.values())
    return methods.most_common(1)[0][0] if methods else "scrypt"


@lru_cache(maxsize=4)
def _unknown_user_hash(method: str) -> str:
    """Checked against when the name is unknown: a hash of the users' own method and parameters, so that unknown
    names cost what known ones do (methods differ in cost: a hash of another one would tell the names apart)."""
    return generate_password_hash(secrets.token_hex(16), method)  # app.users refused at start a method it cannot compute


class User(UserMixin):
    def __init__(self, name: str, fingerprint: str):
        self.name, self.fingerprint = name, fingerprint

    def get_id(self) -> str:
        return f"{self.fingerprint}:{self.name}"


def _users() -> Users:
    return current_app.extensions["lookalike.users"]


def is_private(app: Flask | None = None) -> bool:
    return "lookalike.users" in (app or current_app).extensions


def page_context() -> dict:
    """Every template's view of access: a private gallery shows nothing of its collection until one signs in."""
    if not is_private():
        return {"private": False, "collection_visible": True}
    return {"private": True, "collection_visible": current_user.is_authenticated}


class _SecureOverHttps(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS, directly or through a trusted proxy."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def make_private(app: Flask, hashes: dict[str, str], secret_key: str) -> None:
    """Ask every route but OPEN_ENDPOINTS for a user configured in `hashes`."""
    app.secret_key = secret_key
    app.config.update(
        SESSION_COOKIE_NAME="lookalike_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,  # a Set-Cookie on every page would keep pages out of the page cache
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in require_sign_in: Basic-authenticated API calls carry no token
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session it belongs to
    )
    app.session_interface = _SecureOverHttps()
    app.extensions["lookalike.users"] = Users(hashes)
    CSRFProtect(app)
    logins = LoginManager(app)
    # Its "basic" protection only marks a session not fresh when the address or browser changes; nothing here
    # asks for freshness, and the mark would cost a Set-Cookie, which keeps the page out of the page cache.
    logins.session_protection = None
    logins.user_loader(_user_from_session)
    logins.request_loader(_user_from_basic_auth)
    app.register_blueprint(access_pages)
    app.before_request(require_sign_in)
    app.after_request(_private_caching)


def _user_from_session(user_id: str) -> User | None:
    return _users().session_user(user_id)


def _user_from_basic_auth(_request) -> User | None:
    auth = request.authorization
    if auth is None:
        return None
    name = (auth.username or "") if auth.type == "basic" else ""
    verdict = _users().verify(name, auth.password or "", request.remote_addr or "") if name else Verdict(None)
    if verdict.user is None:
        g.lookalike_refused = verdict
        return None
    g.lookalike_by_basic = True
    return User(name, _users().fingerprint(name))


def require_sign_in():
    """Before every request: let signed-in users through (checking CSRF on cookie-authenticated forms), refuse the rest."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        if request.method in _CSRF_METHODS:
            _check_forgery(by_basic=bool(g.get("lookalike_by_basic")))
        return None
    refused: Verdict | None = g.get("lookalike_refused")
    if refused is not None or request.path.startswith("/api/"):
        return _basic_refusal(refused)
    return redirect(url_for("access.login", next=_this_url()))


def _check_forgery(by_basic: bool) -> None:
    """Refuse a POST another site may have made the browser send; API clients, which are not browsers, need no token.

    A browser sends its cookie, and replays HTTP Basic credentials it has
    cached, with a form another site makes it post. So a cookie needs the
    form's CSRF token; so does Basic outside /api/, where the forms are
    (browsers post them with their token). Basic on /api/ needs none, as
    scripts have no token, but what a browser posts from another site says so
    in its Origin (or Referer) header and is refused; scripts send neither.
    """
    if by_basic and _from_another_site():
        abort(403, description="A request signed in by HTTP Basic came from another site's page, so it is refused.")
    if not by_basic or not request.path.startswith("/api/"):
        current_app.extensions["csrf"].protect()


def _from_another_site() -> bool:
    """Whether the Origin header, or without one the Referer, names another host than this request's (`null` included)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is None:
        return False
    try:
        host = urlsplit(source).netloc
    except ValueError:
        return True
    return host.lower() != request.host.lower()


def _basic_refusal(verdict: Verdict | None):
    if verdict is not None and verdict.wait_s > 0:
        response = jsonify({"error": "Too Many Requests", "detail": "Too many failed sign-ins; try again later."})
        response.status_code = 429
        response.headers["Retry-After"] = str(math.ceil(verdict.wait_s))
        return response
    detail = "Sign in with HTTP Basic: the user lookalike with LOOKALIKE_PASSWORD, or a user of the users file."
    response = jsonify({"error": "Unauthorized", "detail": detail})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = REALM
    return response


def _this_url() -> str:
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


def local_target(target: str | None) -> str:
    """`target` if it is a path on this site, else the gallery: `next` must never send anyone elsewhere."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(" " < character != "\x7f" for character in target)  # browsers drop tabs and newlines: "/\t/evil"
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("pages.gallery")


def _private_caching(response):
    """Nothing but static files may be kept by a shared cache; the sign-in pages by no cache at all."""
    if request.endpoint != "static":
        response.cache_control.public = False
        response.cache_control.private = True
        if request.endpoint in ("access.login", "access.logout"):
            response.cache_control.no_store = True
    return response


def signed_in_gate(app: Flask) -> Callable[[dict], bool]:
    """For the page cache: whether a request may be answered with a kept page, i.e. it comes from a signed-in browser.

    It reads the session as Flask-Login does (Flask's signed cookie, the user id
    under `_user_id`), without a request context: that context cost twice the
    kept page itself. Requests with an Authorization header go to Flask, which
    counts their failures.
    """
    users: Users = app.extensions["lookalike.users"]
    interface = app.session_interface

    def signed_in(environ: dict) -> bool:
        if "HTTP_AUTHORIZATION" in environ or "HTTP_COOKIE" not in environ:
            return False
        session = interface.open_session(app, app.request_class(environ))
        user_id = session.get(_SESSION_USER_KEY) if session is not None else None
        return isinstance(user_id, str) and users.session_user(user_id) is not None

    return signed_in


@access_pages.route("/login", methods=["GET", "POST"])
def login():
    target = local_target(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(target)
        return _login_page(target)
    try:
        current_app.extensions["csrf"].protect()
    except CSRFError:
        return _login_page(target, "The sign-in form expired. Please try again.", 400)
    users = _users()
    name = request.form.get("name", "").strip() if _asks_for_name() else SHARED_USER
    verdict = users.verify(name, request.form.get("password", ""), request.remote_addr or "")
    if verdict.wait_s > 0:
        minutes = math.ceil(verdict.wait_s / 60)
        problem = f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes > 1)}."
        return _login_page(target, problem, 429, {"Retry-After": str(math.ceil(verdict.wait_s))})
    if verdict.user is None:  # the form again, answered 200: a 401 would need a WWW-Authenticate challenge
        return _login_page(target, "That name and password do not match." if _asks_for_name() else "Wrong password.")
    session.clear()  # nothing from before signing in (an old CSRF token) carries over
    login_user(User(verdict.user, users.fingerprint(verdict.user)))
    session.permanent = True
    return redirect(target)


def _asks_for_name() -> bool:
    return set(_users().hashes) != {SHARED_USER}


def _login_page(target: str, problem: str | None = None, status: int = 200, headers: dict | None = None):
    html = render_template("login.html", target=target, problem=problem, asks_for_name=_asks_for_name())
    return html, status, headers or {}


@access_pages.route("/logout", methods=["GET", "POST"])
def logout():
    """GET asks to confirm with a form (a link alone could be followed by another site); POST signs out."""
    if request.method == "GET":
        return render_template("logout.html")
    logout_user()
    session.clear()
    return redirect(url_for("access.login"))


def public_bind_warning(binds: list[str], settings: Settings) -> str | None:
    """The line gunicorn logs at start when a gallery without a password listens beyond this machine."""
    if settings.password or settings.users_file:
        return None
    public = [bind for bind in binds if _reachable_from_elsewhere(bind)]
    if not public:
        return None
    return (
        f"lookalike: this gallery is public: anyone who can reach {', '.join(public)} can browse every photo "
        f"(originals: {settings.originals}). Set LOOKALIKE_PASSWORD and SECRET_KEY "
        "to make it private; see docs/privacy-and-security.md."
    )


def _reachable_from_elsewhere(bind: str) -> bool:
    """Whether a gunicorn bind ('0.0.0.0:8000', '[::1]:80', 'localhost', 'unix:/run/x.sock') listens off this machine."""
    if bind.startswith(("unix:", "fd://")):
        return False  # a socket file: whatever proxies it decides who reaches it
    if bind.startswith("["):
        host = bind[1:].partition("]")[0]
    else:
        host = bind.rpartition(":")[0] if bind.count(":") == 1 else bind
    if host == "":
        return True  # ':8000' is every interface
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: assume it is the machine's public one
