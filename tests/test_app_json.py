"""app.json, the "Deploy to Heroku" manifest: the Python buildpack, a generated SECRET_KEY, and config vars the app reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app import create_app
from app.settings import SETTINGS
from tests.support.live_server import ROOT

MANIFEST = json.loads((ROOT / "app.json").read_text())


def test_the_manifest_builds_with_the_python_buildpack_and_generates_the_session_key():
    assert MANIFEST["buildpacks"] == [{"url": "heroku/python"}]
    assert MANIFEST["env"]["SECRET_KEY"]["generator"] == "secret"
    assert MANIFEST["env"]["LOOKALIKE_INDEX_URL"]["required"] is True  # the slug holds no index: the dyno fetches it


def test_every_config_var_is_described_and_lookalike_ones_are_settings_of_the_registry():
    registry = {setting.name: setting for setting in SETTINGS}
    for name, setting in MANIFEST["env"].items():
        assert len(setting.get("description", "")) > 20, f"{name} needs a description"
        if name.startswith("LOOKALIKE_") or name == "SECRET_KEY":
            assert name in registry, f"{name} is not a setting of app.settings"
            for default in re.findall(r"\(default ([^)]+)\)", setting["description"]):
                assert f"`{default}`" == registry[name].shown_default(), f"app.json gives {name} another default"


@pytest.mark.slow
def test_the_manifest_defaults_start_the_app(tiny_index: Path, monkeypatch):
    for name, setting in MANIFEST["env"].items():
        if "value" in setting:
            monkeypatch.setenv(name, setting["value"])
    app = create_app(tiny_index)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.post("/api/search", data={}).status_code == 503  # LOOKALIKE_SEARCH=off: no search by photo
    assert client.get("/api/similar?like=1").status_code == 200  # "more like these" needs no torch
