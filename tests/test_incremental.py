"""Rerunning precompute over a grown, edited collection: reuse what is unchanged, match a full rebuild."""

from __future__ import annotations

import os
import sys
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.index_file import PhotoTable, path_columns, read_index, thumbnail_dir_for, write_index
from precompute.build import BuildOptions, build_index
from precompute.cli import main
from tests.support.same_index import assert_same_index, by_path

# The cheapest descriptor: these tests are about what is reused, not about quality.
# Re-ranking off: its 20 candidates are more than these collections hold, so lists would never be updated
# (tests/test_rerank.py covers updates with re-ranking).
OPTIONS = BuildOptions(model="efficientnet-lite0", pooling="avg", scales=(), query_expansion=0, k=5, batch_size=8, workers=0,
                       rerank="off")
N = 10  # photos in the first build; two more are added, and one more is used as new content


@pytest.fixture(scope="module")
def holiday_photos(holidays_dir: Path) -> list[Path]:
    return sorted(holidays_dir.glob("*.jpg"))[: N + 3]


@pytest.fixture
def collection(holiday_photos: list[Path], tmp_path: Path) -> Path:
    """The first N of the photos, copied so the test can edit them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for source in holiday_photos[:N]:
        shutil.copy2(source, folder / source.name)
    return folder


def test_update_reuses_unchanged_photos_and_matches_a_full_rebuild(collection, holiday_photos, tmp_path):
    index_path = tmp_path / "out" / "index.pkl"
    first = build_index(collection, index_path, OPTIONS)
    assert (first.embedded, first.added, first.reused) == (N, N, 0)
    before = read_index(index_path)
    ids_before = {p["path"]: p["id"] for p in before.photos}
    thumbs = thumbnail_dir_for(index_path)
    thumb_times = {p.name: p.stat().st_mtime_ns for p in thumbs.iterdir()}

    names = sorted(ids_before)
    removed, changed, touched = names[0], names[5], names[9]
    (collection / removed).unlink()
    shutil.copyfile(holiday_photos[N + 2], collection / changed)  # new content, same name
    os.utime(collection / touched, ns=(1_000_000_000, 1_000_000_000))  # only the mtime differs
    for source in holiday_photos[N : N + 2]:
        shutil.copy2(source, collection / source.name)

    update = build_index(collection, index_path, OPTIONS)
    assert update.neighbours_updated and update.neighbour_method == "exact"
    assert (update.added, update.changed, update.removed) == (2, 1, 1)
    assert (update.embedded, update.reused, update.rehashed) == (3, N - 2, 1)
    assert update.rebuild_reason is None and update.indexed == N + 1
    after = read_index(index_path)

    ids_after = {p["path"]: p["id"] for p in after.photos}
    for path in set(names) - {removed}:
        assert ids_after[path] == ids_before[path], f"{path} changed id"
    new_ids = [ids_after[source.name] for source in holiday_photos[N : N + 2]]
    assert min(new_ids) > max(ids_before.values()) and len(set(ids_after.values())) == N + 1
    assert after.photos[by_path(after)[touched]]["mtime_ns"] == 1_000_000_000

    removed_thumbs = {t["file"] for t in before.photos[by_path(before)[removed]]["thumbnails"].values()}
    assert not any((thumbs / name).exists() for name in removed_thumbs)
    kept = {t["file"] for p in after.photos if p["path"] not in (changed,) for t in p["thumbnails"].values()}
    assert all(thumbs.joinpath(n).stat().st_mtime_ns == thumb_times[n] for n in kept if n in thumb_times)

    full_path = tmp_path / "full" / "index.pkl"
    full = build_index(collection, full_path, OPTIONS)
    assert full.embedded == N + 1 and not full.neighbours_updated
    assert_same_index(after, read_index(full_path))


def edit_collection(collection: Path, holiday_photos: list[Path], edit: str) -> None:
    names = sorted(p.name for p in collection.iterdir())
    if edit == "adds":
        for source in holiday_photos[N : N + 2]:
            shutil.copy2(source, collection / source.name)
    elif edit == "changes":
        shutil.copyfile(holiday_photos[N], collection / names[3])
        shutil.copyfile(holiday_photos[N + 1], collection / names[7])
    else:
        (collection / names[0]).unlink()
        (collection / names[6]).unlink()


@pytest.mark.parametrize("query_expansion", [0, 2], ids=["plain", "αQE"])
@pytest.mark.parametrize("edit", ["adds", "changes", "removes"])
@pytest.mark.slow
def test_each_kind_of_edit_updates_the_lists_to_what_a_full_rebuild_gives(collection, holiday_photos, tmp_path, edit, query_expansion):
    options = replace(OPTIONS, query_expansion=query_expansion)
    index_path = tmp_path / "out" / "index.pkl"
    build_index(collection, index_path, options)
    edit_collection(collection, holiday_photos, edit)
    update = build_index(collection, index_path, options)
    assert update.neighbours_updated, "the update recomputed every list"
    full_path = tmp_path / "full" / "index.pkl"
    full = build_index(collection, full_path, options)
    assert_same_index(read_index(index_path), read_index(full_path))
    if query_expansion:
        np.testing.assert_array_equal(read_index(index_path).expansion[0], read_index(full_path).expansion[0])
    if edit == "adds" and not query_expansion:
        # The two new rows against every row, nothing else: no list lost a member.
        assert update.similarities == 2 * (N + 2) < full.similarities


def test_rerun_without_changes_embeds_nothing(collection, tmp_path, capsys):
    index_path = tmp_path / "index.pkl"
    args = [str(collection), "--out", str(index_path), "--model", "efficientnet-lite0", "--workers", "0", "--k", "5"]
    assert main(args) == 0
    before = read_index(index_path)
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"Embedded 0, reused {N} from the previous index; added 0, changed 0, removed 0." in out
    after = read_index(index_path)
    assert [p["id"] for p in after.photos] == [p["id"] for p in before.photos]
    np.testing.assert_array_equal(after.embeddings, before.embeddings)
    np.testing.assert_array_equal(after.neighbours, before.neighbours)


def test_ids_of_removed_photos_are_not_given_to_new_ones(collection, holiday_photos, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(collection, index_path, OPTIONS)
    last = max(read_index(index_path).photos, key=lambda p: p["id"])
    (collection / last["path"]).unlink()
    build_index(collection, index_path, OPTIONS)
    shutil.copy2(holiday_photos[N + 2], collection / holiday_photos[N + 2].name)
    build_index(collection, index_path, OPTIONS)
    ids = {p["path"]: p["id"] for p in read_index(index_path).photos}
    assert ids[holiday_photos[N + 2].name] > last["id"]


def test_another_model_rebuilds_in_full_and_says_so(collection, tmp_path, capsys):
    """resnet18 with random weights made here: only to be a different model, not for quality."""
    index_path = tmp_path / "index.pkl"
    build_index(collection, index_path, OPTIONS)
    from torchvision.models import resnet18

    torch.manual_seed(0)
    weights = tmp_path / "random-resnet18.pt"
    torch.save(resnet18(weights=None).state_dict(), weights)
    code = main([str(collection), "--out", str(index_path), "--model", "resnet18", "--weights", str(weights), "--workers", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Rebuilt in full: the existing index was built with a different model (name: 'efficientnet-lite0'" in out
    assert f"Embedded {N}, reused 0" in out
    assert read_index(index_path).model.name == "resnet18"


def test_unreadable_previous_index_is_rebuilt_and_says_so(collection, tmp_path, capsys):
    index_path = tmp_path / "index.pkl"
    index_path.write_bytes(b"not a pickle at all")
    args = [str(collection), "--out", str(index_path), "--model", "efficientnet-lite0", "--workers", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Rebuilt in full: the existing index cannot be read" in out and f"Embedded {N}, reused 0" in out
    assert len(read_index(index_path).photos) == N


def test_an_index_listing_a_path_twice_is_rebuilt_and_says_so(collection, tmp_path, capsys):
    """Its rows cannot be mapped to this run's photos one to one, so nothing of it is reused."""
    index_path = tmp_path / "index.pkl"
    build_index(collection, index_path, OPTIONS)
    index = read_index(index_path)
    paths = [photo["path"].encode() for photo in index.photos]
    columns = dict(index.photos.columns) | path_columns([paths[0], *paths[1:-1], paths[0]])
    write_index(replace(index, photos=PhotoTable(columns), embeddings=np.asarray(index.embeddings).copy()), index_path)
    assert main([str(collection), "--out", str(index_path), "--model", "efficientnet-lite0", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "Rebuilt in full: the existing index lists a photo twice" in out and f"Embedded {N}, reused 0" in out


def test_missing_thumbnails_are_made_again(collection, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(collection, index_path, OPTIONS)
    shutil.rmtree(thumbnail_dir_for(index_path))
    report = build_index(collection, index_path, OPTIONS)
    assert report.embedded == N and report.changed == N
    index = read_index(index_path)
    assert all((thumbnail_dir_for(index_path) / t["file"]).is_file() for p in index.photos for t in p["thumbnails"].values())


def test_update_with_query_expansion_matches_a_full_rebuild(collection, holiday_photos, tmp_path):
    """The index keeps the model's own embeddings, so an update re-derives the expansion from them."""
    options = replace(OPTIONS, query_expansion=2)
    index_path = tmp_path / "out" / "index.pkl"
    build_index(collection, index_path, options)
    for source in holiday_photos[N : N + 2]:
        shutil.copy2(source, collection / source.name)
    update = build_index(collection, index_path, options)
    assert (update.embedded, update.reused, update.rebuild_reason) == (2, N, None)
    full_path = tmp_path / "full" / "index.pkl"
    build_index(collection, full_path, options)
    updated, full = read_index(index_path), read_index(full_path)
    assert_same_index(updated, full)
    embeddings = updated.embeddings
    plain_scores = np.take_along_axis(embeddings @ embeddings.T, updated.neighbours, axis=1)
    assert not np.allclose(updated.scores, plain_scores, atol=1e-3), "expansion had no effect"


def test_another_pooling_rebuilds_in_full(collection, tmp_path):
    index_path = tmp_path / "index.pkl"
    build_index(collection, index_path, OPTIONS)
    report = build_index(collection, index_path, replace(OPTIONS, pooling="gem"))
    assert report.reused == 0 and report.embedded == N
    assert "pooling: 'avg', now 'gem'" in report.rebuild_reason


@pytest.mark.slow
def test_approx_from_the_command_line_and_its_update(collection, holiday_photos, tmp_path, capsys):
    index_path = tmp_path / "index.pkl"
    args = [str(collection), "--out", str(index_path), "--model", "efficientnet-lite0", "--workers", "0", "--k", "5",
            "--query-expansion", "2", "--rerank", "off", "--neighbours", "approx"]
    assert main(args) == 0
    assert "Neighbours: computed, approx," in capsys.readouterr().out
    index = read_index(index_path)
    assert index.model.neighbours == "approx"
    assert index.neighbours.shape == (N, 5) and index.expansion[0].shape == (N, 2)
    for source in holiday_photos[N : N + 2]:
        shutil.copy2(source, collection / source.name)
    assert main(args) == 0
    assert "Neighbours: updated from the previous index, approx," in capsys.readouterr().out
    updated = read_index(index_path)
    assert updated.model.neighbours == "approx" and updated.neighbours.shape == (N + 2, 5)
    # Exact after approx computes in full: an exact index must equal a full exact rebuild.
    assert main([*args[:-1], "exact"]) == 0
    assert "Neighbours: computed, exact," in capsys.readouterr().out


def test_approx_without_faiss_is_one_clear_line(collection, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    code = main([str(collection), "--out", str(tmp_path / "index.pkl"), "--model", "efficientnet-lite0", "--neighbours", "approx"])
    err = capsys.readouterr().err
    assert code == 1 and "error: the approximate neighbour search needs faiss" in err and "Traceback" not in err
    assert not (tmp_path / "index.pkl").exists()
