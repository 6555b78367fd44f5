"""`python -m benchmarks.synthetic_index`: a valid index the web app serves, with the pipeline's own neighbour step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from core.index_file import read_index, thumbnail_dir_for
from precompute.neighbours.exact import top_k_neighbours

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def generate(out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.synthetic_index", str(out), *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("clustered", [False, True], ids=["uniform", "clustered"])
def test_it_writes_an_index_the_app_serves_with_real_neighbours(tmp_path, clustered):
    out = tmp_path / "index.pkl"
    done = generate(out, "--photos", "400", "--dim", "32", "--k", "5", *(["--clustered"] if clustered else []))
    assert done.returncode == 0, done.stderr
    assert "400 photos, 32-d" in done.stdout
    index = read_index(out)
    assert index.embeddings.shape == (400, 32) and index.neighbours.shape == (400, 5)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1, rtol=1e-5)
    expected, _ = top_k_neighbours(index.embeddings, 5)
    np.testing.assert_array_equal(index.neighbours, expected)
    client = create_app(out).test_client()
    assert client.get("/healthz").json == {"status": "ok", "photos": 400}
    assert client.get("/photos/399").status_code == 200
    assert client.get("/photos/7/thumb.jpg").status_code == 200
    assert len(list(thumbnail_dir_for(out).iterdir())) == 2  # every photo shares the same two files


def test_clustered_photos_have_closer_neighbours_than_uniform_ones(tmp_path):
    best = {}
    for kind in ("uniform", "clustered"):
        out = tmp_path / kind / "index.pkl"
        out.parent.mkdir()
        assert generate(out, "--photos", "1000", "--dim", "64", *(["--clustered"] if kind == "clustered" else [])).returncode == 0
        best[kind] = float(read_index(out).scores[:, 0].mean())
    assert best["clustered"] > 0.5 > best["uniform"], best


def test_random_neighbours_are_valid_but_not_computed(tmp_path):
    out = tmp_path / "index.pkl"
    assert generate(out, "--photos", "300", "--dim", "16", "--neighbours", "random").returncode == 0
    index = read_index(out)
    rows = np.arange(300)[:, None]
    assert (index.neighbours != rows).all() and (np.diff(index.scores, axis=1) <= 0).all()


def test_bad_options_are_refused_in_one_line(tmp_path):
    done = generate(tmp_path / "index.pkl", "--photos", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr and "Traceback" not in done.stderr
