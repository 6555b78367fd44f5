"""LOOKALIKE_SEARCH: `off` turns search by photo off even where torch is installed; anything unknown stops the app."""

from __future__ import annotations

import pytest

from app import create_app


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_off_turns_search_off_with_torch_installed(synthetic_index, monkeypatch, value):
    monkeypatch.setenv("LOOKALIKE_SEARCH", value)
    app = create_app(synthetic_index)
    assert app.extensions["lookalike.catalog"].embeddings is not None  # still mapped, for "more like these"
    response = app.test_client().post("/api/search", data={})
    assert response.status_code == 503 and "LOOKALIKE_SEARCH=off" in response.json["detail"]
    assert app.test_client().get("/photos/1").status_code == 200
    assert app.test_client().get("/api/similar?like=1").status_code == 200


def test_an_unknown_setting_stops_the_app_with_one_line(synthetic_index, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_SEARCH", "sometimes")
    with pytest.raises(SystemExit) as stopped:
        create_app(synthetic_index)
    assert stopped.value.code == 4
    assert capsys.readouterr().err == "lookalike: cannot start: LOOKALIKE_SEARCH must be one of auto, off, not 'sometimes'\n"
