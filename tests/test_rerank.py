"""`--rerank local` in the pipeline, with real OpenCV on real photos: order, scores, incremental runs, damaged evidence."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from precompute import rerank
from precompute.build import BuildOptions, build_index
from precompute.cli import main
from precompute.evidence import evidence_path_for
from core.index_file import read_index
from precompute.rerank import pairs_path_for
from tests.support.same_index import assert_same_index

OPTIONS = BuildOptions(model="efficientnet-lite0", k=5, batch_size=8, workers=0, rerank="local")
QUERY = "100000.jpg"
# Other scenes, among them look-alikes of the query's that the model alone ranks above an edited shot of it.
OTHERS = ["100100.jpg", "100200.jpg", "100300.jpg", "100400.jpg", "100500.jpg", "100600.jpg", "100700.jpg",
          "100800.jpg", "100900.jpg", "101000.jpg", "101100.jpg", "101200.jpg"]


def _collection(holidays_dir: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in [QUERY, *OTHERS]:
        shutil.copy(holidays_dir / name, folder / name)
    photo = Image.open(holidays_dir / QUERY).convert("RGB")
    width, height = photo.size
    edited = photo.crop((width // 8, height // 10, width - width // 10, height - height // 8)).rotate(90, expand=True)
    ImageEnhance.Brightness(edited).enhance(1.5).save(folder / "edited.jpg", quality=90)
    return folder


def test_auto_re_ranks_a_collection_up_to_its_limit_and_says_so(holidays_dir, tmp_path, monkeypatch, capsys):
    """The default changes with collection size (the evidence is held in memory): the summary names the choice."""
    photos = _collection(holidays_dir, tmp_path / "photos")
    count = len(list(photos.iterdir()))
    for limit, chosen in ((count, "local"), (count - 1, "off")):
        monkeypatch.setattr(rerank, "AUTO_LOCAL_UP_TO", limit)
        out = tmp_path / chosen / "index.pkl"
        assert main([str(photos), "--out", str(out), "--model", "efficientnet-lite0", "--k", "5", "--workers", "0"]) == 0
        index = read_index(out)
        assert index.model.rerank == chosen and (index.verified is not None) == (chosen == "local")
        assert f"Re-ranking: {chosen} (auto: local up to" in capsys.readouterr().out


def _listed(index: dict, name: str) -> list[str]:
    row = next(r for r, p in enumerate(index.photos) if p["path"] == name)
    return [index.photos[n]["path"] for n in index.neighbours[row]]


def test_a_rotated_cropped_reexposed_shot_of_the_scene_rises_above_look_alikes(holidays_dir, tmp_path):
    photos = _collection(holidays_dir, tmp_path / "photos")
    off = read_index(build_index(photos, tmp_path / "off" / "index.pkl", replace(OPTIONS, rerank="off")).index_path)
    local = read_index(build_index(photos, tmp_path / "local" / "index.pkl", OPTIONS).index_path)
    assert "edited.jpg" not in _listed(off, QUERY)[:1]  # the model alone puts a look-alike of another scene first
    assert _listed(local, QUERY)[0] == "edited.jpg"
    row = next(r for r, p in enumerate(local.photos) if p["path"] == QUERY)
    assert local.verified[row][0] and not local.verified[row][1:].any()
    scores = local.scores[row]
    assert list(scores) == sorted(scores, reverse=True) and 0 <= scores.min() and scores.max() <= 1
    assert off.verified is None and off.model.rerank == "off" and local.model.rerank == "local"


def test_an_update_verifies_only_new_pairs_and_equals_a_full_rebuild(holidays_dir, tmp_path):
    photos = _collection(holidays_dir, tmp_path / "photos")
    index_path = tmp_path / "update" / "index.pkl"
    first = build_index(photos, index_path, OPTIONS)
    for name in ["100001.jpg", "100101.jpg"]:
        shutil.copy(holidays_dir / name, photos / name)
    update = build_index(photos, index_path, OPTIONS)
    full = build_index(photos, tmp_path / "full" / "index.pkl", OPTIONS)
    assert update.embedded == 2 and update.pairs_reused > 0
    assert update.pairs_verified + update.pairs_reused == full.pairs_verified
    assert update.pairs_verified < first.pairs_verified
    assert_same_index(read_index(index_path), read_index(full.index_path))


def test_a_damaged_side_file_is_said_and_the_evidence_extracted_again(holidays_dir, tmp_path, capsys):
    from precompute.cli import print_summary

    photos = _collection(holidays_dir, tmp_path / "photos")
    index_path = tmp_path / "index" / "index.pkl"
    build_index(photos, index_path, OPTIONS)
    before = read_index(index_path)
    side = evidence_path_for(index_path)
    side.write_bytes(side.read_bytes()[: side.stat().st_size // 3])
    pairs_path_for(index_path).write_bytes(b"not a zip file")
    again = build_index(photos, index_path, OPTIONS)
    assert "damaged" in again.evidence_note and "extracting the evidence again" in again.evidence_note
    assert again.embedded == len(before.photos) and again.added == again.changed == again.removed == 0
    assert again.pairs_reused == 0
    print_summary(again)
    assert "Evidence: " in capsys.readouterr().out
    assert_same_index(read_index(index_path), before)
    assert [p["id"] for p in read_index(index_path).photos] == [p["id"] for p in before.photos]


def test_the_photo_page_and_api_show_the_ranking_score_and_mark_the_same_scene(holidays_dir, tmp_path):
    from app import create_app

    photos = _collection(holidays_dir, tmp_path / "photos")
    report = build_index(photos, tmp_path / "index" / "index.pkl", OPTIONS)
    index = read_index(report.index_path)
    row = next(r for r, p in enumerate(index.photos) if p["path"] == QUERY)
    photo_id = int(index.photos[row]["id"])
    client = create_app(report.index_path).test_client()
    html = client.get(f"/photos/{photo_id}").get_data(as_text=True)
    listed = html[html.index('id="similar-heading"'):]
    assert "details match point for point" in listed
    assert listed.count('class="same-scene" title=') == 1
    assert listed.index("same-scene\" title=") < listed.index("edited.jpg", listed.index("<ol")) + 400
    shown = [float(s) for s in __import__("re").findall(r'class="score-value">(?:<[^>]+>[^<]*</span>)?([0-9.]+)<', listed)]
    assert shown == sorted(shown, reverse=True) and shown == [round(float(s), 2) for s in index.scores[row]]
    answer = client.get(f"/api/photos/{photo_id}/similar").get_json()
    assert answer["ranked_by"] == "appearance+local-features"
    assert [item["same_scene"] for item in answer["similar"]] == index.verified[row].tolist()
    assert [item["score"] for item in answer["similar"]] == [round(float(s), 4) for s in index.scores[row]]


def test_an_index_whose_verified_marks_do_not_fit_its_lists_is_refused(holidays_dir, tmp_path):
    from core.index_file import IndexFileError, write_index

    photos = _collection(holidays_dir, tmp_path / "photos")
    index = read_index(build_index(photos, tmp_path / "index" / "index.pkl", OPTIONS).index_path)
    write_index(index.as_dict() | {"verified": index.verified[:, :2]}, tmp_path / "bad.pkl")
    with pytest.raises(IndexFileError, match="'verified' must be"):
        read_index(tmp_path / "bad.pkl")
