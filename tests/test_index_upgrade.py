"""An index of format version 1 (a dict per photo, arrays inside the pickle): the app says how to upgrade it,
and the next precompute run over it reuses its embeddings and writes the current format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from benchmarks.synthetic_index import as_format_1
from core.index_file import FORMAT_VERSION, read_index
from precompute.cli import main
from tests.support.tiny_index import PHOTOS, build_tiny_index


def test_the_next_precompute_run_upgrades_a_version_1_index(tmp_path: Path, capsys):
    index_path = build_tiny_index(tmp_path)
    current = read_index(index_path)
    records, embeddings = list(current.photos), np.array(current.embeddings)
    index_path.write_bytes(pickle.dumps(as_format_1(current), protocol=5))  # in place: `current`, mapped from the old file, is not read after this

    with pytest.raises(SystemExit):
        create_app(index_path)
    assert "format version 1, from an older Lookalike; run `python -m precompute PHOTOS" in capsys.readouterr().err

    assert main([str(tmp_path / "photos"), "--out", str(index_path), "--model", "efficientnet-lite0", "--k", "3",
                 "--workers", "0"]) == 0
    assert f"Embedded 0, reused {len(PHOTOS)} from the previous index" in capsys.readouterr().out
    with open(index_path, "rb") as file:
        assert pickle.load(file)["version"] == FORMAT_VERSION  # the table of contents
    upgraded = read_index(index_path)
    assert list(upgraded.photos) == records
    np.testing.assert_array_equal(upgraded.embeddings, embeddings)
    assert create_app(index_path).test_client().get("/healthz").json["photos"] == len(PHOTOS)
