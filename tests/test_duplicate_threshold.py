"""The threshold evaluation of the duplicate groups: its pair counts, its choice, and one small end-to-end run."""

import re
import subprocess
import sys

import pytest

from tools.evaluate.duplicate_threshold import PairCounts, chosen, half_of_original


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


def test_halves_split_by_wordnet_id():
    assert half_of_original("n01440764_tench.JPEG") == "tune" and half_of_original("n01443537_goldfish.JPEG") == "confirm"


@pytest.mark.slow
def test_the_command_prints_a_row_per_threshold_and_its_choice(holidays_dir, imagenet_dir, tmp_path):
    holidays, originals = tmp_path / "holidays", tmp_path / "originals"
    holidays.mkdir()
    originals.mkdir()
    for source in sorted(holidays_dir.glob("100[0-3]*.jpg")):
        (holidays / source.name).symlink_to(source)
    for source in sorted(imagenet_dir.iterdir())[:16]:
        (originals / source.name).symlink_to(source)
    result = subprocess.run(
        [sys.executable, "-m", "tools.evaluate.duplicate_threshold", "--model", "efficientnet-lite0", "--workers", "1",
         "--holidays", str(holidays), "--originals", str(originals), "--copies", "8"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| 0.")]
    assert len(rows) == 50 and rows[0].startswith("| 0.50 |") and rows[-1].startswith("| 0.99 |")
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    recalls = [re.search(r"\((\d+)/(\d+)\)", cells[column]).groups() for column in (2, 5)]  # tune, confirm
    assert sum(int(true) for _, true in recalls) == 8  # every copy, in one half or the other
    assert all(right == true for right, true in recalls)  # at 0.50 every copy shares its original's group
    assert next(line for line in lines if line.startswith("Chosen on the tune half: 0."))
    assert "copies grouped with their original, per edit" in lines[-1] and "flip " in lines[-1]
