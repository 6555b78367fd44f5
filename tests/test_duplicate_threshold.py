"""The threshold evaluation of the duplicate groups: its pair counts, its choice, and one small end-to-end run."""

import re
import subprocess
import sys

import numpy as np
import pytest

from precompute import verification
from core.duplicate_groups import DuplicateGroups
from tools.evaluate.duplicate_threshold import PairCounts, chosen, half_of_original, pair_counts, photo_halves
from tools.evaluate.near_duplicates import DUPLICATE_KINDS


def test_pair_counts_give_precision_recall_and_f1():
    counts = PairCounts(grouped=10, right=6, true=8)
    assert (counts.precision, counts.recall) == (0.6, 0.75)
    assert abs(counts.f1 - 2 * 0.6 * 0.75 / 1.35) < 1e-12
    assert PairCounts(0, 0, 5).precision == 1.0 and PairCounts(0, 0, 5).f1 == 0.0


def test_grouped_pairs_are_right_when_both_photos_are_one_picture():
    # rows 0-2 one picture (an original, an identical file, a copy), 3-4 another, 5 and 6 shots of one scene
    source = np.array([0, 0, 0, 3, 3, 5, 6])
    halves = np.array(["tune"] * 5 + ["confirm"] * 2)
    groups = DuplicateGroups(None, np.array([0, 1, 2, 3, 5, 6]), np.array([0, 3, 4, 6]), 0)  # 3 alone; 5 with 6
    counts = pair_counts(groups, halves, source)
    assert (counts["tune"].grouped, counts["tune"].right, counts["tune"].true) == (3, 3, 4)
    assert (counts["confirm"].grouped, counts["confirm"].right, counts["confirm"].true) == (1, 0, 0)


def test_the_threshold_is_chosen_on_tune_alone_ties_to_the_higher():
    table = {0.8: {"tune": PairCounts(4, 2, 4), "confirm": PairCounts(1, 1, 1)},
             0.9: {"tune": PairCounts(4, 2, 4), "confirm": PairCounts(9, 0, 9)},
             0.7: {"tune": PairCounts(9, 1, 4), "confirm": PairCounts(1, 1, 1)}}
    assert chosen(table) == 0.9  # same tune F1 as 0.8: the higher threshold; confirm plays no part


def test_a_copy_of_the_second_of_two_identical_files_is_a_copy_of_the_first(tmp_path):
    """holidays-dev files 103102 and 103902 are one picture: a copy of 103902 must count as right beside 103102."""
    from precompute.build import BuildOptions, build_index
    from core.index_file import read_index
    from tests.support.tiny_index import write_photo

    photos = tmp_path / "photos"
    (photos / "holidays").mkdir(parents=True)
    (photos / "holiday-copies").mkdir()
    write_photo(photos / "holidays" / "103102.jpg", 320, 240, (200, 40, 40))
    (photos / "holidays" / "103902.jpg").write_bytes((photos / "holidays" / "103102.jpg").read_bytes())
    write_photo(photos / "holidays" / "100000.jpg", 320, 240, (40, 200, 40))
    write_photo(photos / "holiday-copies" / "copy0000-half.jpg", 160, 120, (200, 40, 40))
    build_index(photos, tmp_path / "index.pkl", BuildOptions(model="efficientnet-lite0", k=2, workers=0, rerank="off"))
    index = read_index(tmp_path / "index.pkl")
    row = {photo["path"]: number for number, photo in enumerate(index.photos)}
    _, source = photo_halves(index, {"holiday-copies/copy0000-half.jpg": ("holidays/103902.jpg", "half")})
    first = row["holidays/103102.jpg"]
    assert source[row["holiday-copies/copy0000-half.jpg"]] == source[row["holidays/103902.jpg"]] == first
    assert source[first] == first and source[row["holidays/100000.jpg"]] == row["holidays/100000.jpg"]


def test_halves_split_by_wordnet_id():
    assert half_of_original("n01440764_tench.JPEG") == "tune" and half_of_original("n01443537_goldfish.JPEG") == "confirm"


@pytest.mark.slow
@pytest.mark.parametrize("kept", [False, True], ids=["temporary-folder", "work-folder"])
def test_the_command_prints_a_row_per_threshold_its_choice_and_every_edit_of_both_kinds(holidays_dir, imagenet_dir, tmp_path, kept):
    holidays, originals = tmp_path / "holidays", tmp_path / "originals"
    holidays.mkdir()
    originals.mkdir()
    for source in sorted(holidays_dir.glob("100[0-9]*.jpg")):
        (holidays / source.name).symlink_to(source)
    for source in sorted(imagenet_dir.iterdir())[:16]:
        (originals / source.name).symlink_to(source)
    result = subprocess.run(
        [sys.executable, "-m", "tools.evaluate.duplicate_threshold", "--model", "efficientnet-lite0", "--workers", "1",
         "--holidays", str(holidays), "--originals", str(originals), "--copies", "12", "--holiday-copies", "12",
         *(["--work", str(tmp_path / "work")] if kept else [])],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| 0.")]
    assert len(rows) == 50 and rows[0].startswith("| 0.50 |") and rows[-1].startswith("| 0.99 |")
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    recalls = [re.search(r"\((\d+)/(\d+)\)", cells[column]).groups() for column in (2, 5)]  # tune, confirm
    assert sum(int(true) for _, true in recalls) == 24  # every copy, in one half or the other
    assert all(right == true for right, true in recalls)  # at 0.50 every copy shares its original's group
    assert next(line for line in lines if line.startswith("Chosen on the tune half: 0."))
    assert next(line for line in lines if line.startswith("Chosen on the tune half: inliers ≥ "))
    for kind in DUPLICATE_KINDS:  # one table per kind of group, each with every edit, two copies of each in all
        edits = [line for line in lines if line.startswith(f"| {kind} |")]
        assert len(edits) == 2, kind
        assert all(sum(int(cell.split("/")[1]) for cell in line.strip("|").split("|")[1:]) == 2 for line in edits)
    assert lines[-1].startswith(f"The pipeline's defaults ({verification.SAME_MIN_INLIERS}, {verification.SAME_MAX_ERROR}, ")
    if kept:
        assert len(list((tmp_path / "work" / "photos" / "holiday-copies").iterdir())) == 12  # made in --work, not here


def test_more_copies_than_photos_is_one_line_and_a_clean_exit(imagenet_dir, holidays_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tools.evaluate.duplicate_threshold", "--holidays", str(holidays_dir), "--originals",
         str(imagenet_dir), "--holiday-copies", "100000"], capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "100000 copies of the photos" in result.stderr and len(result.stderr.strip().splitlines()) == 1
