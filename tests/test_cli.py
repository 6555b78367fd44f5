"""`python -m precompute` end to end, as a user runs it."""

import shutil
import subprocess
import sys

import pytest

from core.index_file import read_index


def run_precompute(*args):
    return subprocess.run([sys.executable, "-m", "precompute", *map(str, args)], capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_summary_reports_indexed_skipped_model_and_index(holidays_dir, tmp_path):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    for source in sorted(holidays_dir.glob("1000*.jpg")):
        shutil.copy(source, photos / "trip" / source.name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (photos / "notes.txt").write_text("hello")
    out = tmp_path / "out" / "index.pkl"
    result = run_precompute(photos, "--out", out, "--model", "efficientnet-lite0", "--k", "2", "--workers", "1")
    assert result.returncode == 3, result.stderr  # written, but one photo was skipped
    assert "Indexed 3 photos" in result.stdout and "efficientnet-lite0" in result.stdout
    assert "broken.jpg:" in result.stdout and "Skipped 1" in result.stdout
    assert f"Index: {out}" in result.stdout
    index = read_index(out)
    assert [p["path"] for p in index.photos] == ["trip/100000.jpg", "trip/100001.jpg", "trip/100002.jpg"]
    assert index.neighbours.shape == (3, 2)
    assert [s["path"] for s in index.skipped] == ["broken.jpg"] and index.skipped[0]["reason"]
    thumbs = out.parent / "index-thumbnails"
    assert sorted(p.name for p in thumbs.iterdir()) == sorted(
        t["file"] for p in index.photos for t in p["thumbnails"].values()
    )


@pytest.mark.slow
def test_a_missing_folder_is_one_clear_line(tmp_path):
    result = run_precompute(tmp_path / "nope", "--out", tmp_path / "index.pkl")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: photo folder not found")
    assert "Traceback" not in result.stderr
