"""A gallery without a password that listens beyond this machine says so, once, in gunicorn's log at start."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from app.access import public_bind_warning
from app.settings import read_settings
from tests.support.live_server import ROOT, running_gunicorn


@pytest.mark.parametrize("binds, public", [
    (["0.0.0.0:8000"], True),  # the Procfile's bind, on Heroku's $PORT
    (["[::]:8000"], True),
    ([":8000"], True),
    (["192.0.2.10:80"], True),
    (["gallery.example.com:80"], True),
    (["127.0.0.1:8000", "0.0.0.0:8001"], True),
    (["127.0.0.1:8000"], False),
    (["127.0.0.2"], False),
    (["[::1]:8000"], False),
    (["localhost:8000"], False),
    (["unix:/run/lookalike.sock"], False),
])
def test_public_binds_are_told_apart(binds, public):
    warning = public_bind_warning(binds, read_settings({}))
    assert (warning is not None) == public
    if public:
        assert "this gallery is public" in warning and "LOOKALIKE_PASSWORD" in warning


@pytest.mark.parametrize("variable", ["LOOKALIKE_PASSWORD", "LOOKALIKE_USERS_FILE"])
def test_a_private_gallery_says_nothing(variable):
    assert public_bind_warning(["0.0.0.0:8000"], read_settings({variable: "set"})) is None


def _run_hook(tmp_path: Path, bind: str, environ: dict, monkeypatch) -> str:
    """Call gunicorn.conf.py's when_ready as gunicorn's arbiter does: with its config and its logger."""
    for name in ("LOOKALIKE_PASSWORD", "LOOKALIKE_USERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "error.log"
    config = Config()
    config.set("bind", [bind])
    config.set("errorlog", str(log))
    server = SimpleNamespace(cfg=config, log=Logger(config))
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))["when_ready"](server)
    return log.read_text()


def test_the_gunicorn_hook_logs_the_notice_for_a_public_bind(tmp_path, monkeypatch):
    logged = _run_hook(tmp_path, "0.0.0.0:5000", {}, monkeypatch)
    assert logged.count("this gallery is public") == 1 and "0.0.0.0:5000" in logged
    assert "[WARNING]" in logged


def test_the_gunicorn_hook_is_quiet_when_private(tmp_path, monkeypatch):
    assert "public" not in _run_hook(tmp_path, "0.0.0.0:5000", {"LOOKALIKE_PASSWORD": "pw"}, monkeypatch)


def test_a_real_gunicorn_on_localhost_says_nothing(synthetic_index, tmp_path):
    log = tmp_path / "gunicorn.log"
    with running_gunicorn([sys.executable, "-m", "gunicorn"], synthetic_index, log):
        pass
    text = log.read_text()
    assert "Listening at: http://127.0.0.1:" in text and "public" not in text
