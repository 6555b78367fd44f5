"""The threshold evaluation of the duplicate groups: its pair counts, its choice, and one small end-to-end run."""

import re
import subprocess
import sys

import pytest

from precompute import verification
from tools.evaluate.duplicate_threshold import PairCounts, chosen, goals_first, half_of_original
from tools.evaluate.near_duplicates import DUPLICATE_KINDS


def test_pair_counts_give_precision_recall_and_f1():
    counts = PairCounts(grouped=10, right=6, true=8)
    assert (counts.precision, counts.recall) == (0.6, 0.75)
    assert abs(counts.f1 - 2 * 0.6 * 0.75 / 1.35) < 1e-12
    assert PairCounts(0, 0, 5).precision == 1.0 and PairCounts(0, 0, 5).f1 == 0.0


def test_the_threshold_is_chosen_on_tune_alone_ties_to_the_higher():
    table = {0.8: {"tune": PairCounts(4, 2, 4), "confirm": PairCounts(1, 1, 1)},
             0.9: {"tune": PairCounts(4, 2, 4), "confirm": PairCounts(9, 0, 9)},
             0.7: {"tune": PairCounts(9, 1, 4), "confirm": PairCounts(1, 1, 1)}}
    assert chosen(table) == 0.9  # same tune F1 as 0.8: the higher threshold; confirm plays no part


def test_same_picture_thresholds_meet_both_goals_on_tune_and_group_the_least():
    def row(grouped, right, confirm=PairCounts(1, 1, 1)):
        return {"tune": PairCounts(grouped, right, 100), "confirm": confirm}

    table = {(8, 0.4, 0.05): row(99, 98), (12, 0.3, 0.05): row(96, 96), (12, 0.2, 0.05): row(90, 90),
             (20, 0.3, 0.02): row(96, 96, PairCounts(50, 0, 9))}
    # (12, 0.2) misses the recall goal; of the two that meet both with 96 pairs, the stricter (less disagreement)
    assert goals_first(table) == (20, 0.3, 0.02)
    del table[(20, 0.3, 0.02)], table[(12, 0.3, 0.05)]
    assert goals_first(table) == (8, 0.4, 0.05)
    table[(8, 0.4, 0.05)] = row(99, 94)  # none meets both goals: the highest tune recall at precision ≥ 0.98
    assert goals_first(table) == (12, 0.2, 0.05)


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
