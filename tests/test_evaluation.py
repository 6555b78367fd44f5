"""The evaluation command's metrics and near-duplicate set, and one small end-to-end run."""

import hashlib
import subprocess
import sys

import numpy as np
from PIL import Image

from precompute.evaluate.metrics import average_precision, mean_average_precision, recall_of_originals
from precompute.evaluate.near_duplicates import KINDS, make_copies


def test_average_precision_of_known_rankings():
    assert average_precision(np.array([True, True, False]), 2) == 1.0
    assert average_precision(np.array([False, True, False, True]), 2) == (1 / 2 + 2 / 4) / 2
    assert average_precision(np.array([False, False]), 0) == 0.0


def test_map_leaves_the_query_out_and_ranks_by_cosine():
    embeddings = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    groups = np.array([0, 0, 1, 1])
    assert mean_average_precision(embeddings, groups, np.array([0, 2])) == 1.0
    # Row 2, the only group-mate of row 0, ranks third behind rows 1 and 3.
    assert mean_average_precision(embeddings, np.array([0, 1, 0, 1]), np.array([0])) == 1 / 3


def test_recall_of_originals_counts_rank_one_and_top_k():
    embeddings = np.eye(4, dtype=np.float32)
    embeddings[3] = [0.8, 0.6, 0, 0]  # a copy of row 0, but also close to row 1
    top1, top2 = recall_of_originals(embeddings, np.array([3, 3]), np.array([0, 1]), k=2)
    assert (top1, top2) == (0.5, 1.0)


def test_near_duplicate_set_is_seeded_and_covers_every_edit(tmp_path):
    originals = []
    for number in range(10):
        path = tmp_path / f"original{number}.jpg"
        Image.new("RGB", (120, 90), (number * 20, 100, 200 - number * 10)).save(path)
        originals.append(path)
    first = make_copies(originals, tmp_path / "a", count=8, seed=7)
    second = make_copies(originals, tmp_path / "b", count=8, seed=7)
    assert first == second
    assert sorted(kind for _, kind in first.values()) == sorted(KINDS)
    for name in first:
        assert hashlib.sha1((tmp_path / "a" / name).read_bytes()).digest() == hashlib.sha1((tmp_path / "b" / name).read_bytes()).digest()
    rotated = next(name for name, (_, kind) in first.items() if kind == "exif-rotation")
    assert Image.open(tmp_path / "a" / rotated).getexif()[0x0112] == 6


def test_evaluate_command_prints_a_table_row(holidays_dir, imagenet_dir, tmp_path):
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    for source in sorted(holidays_dir.glob("100[0-4]*.jpg")):
        (holidays / source.name).symlink_to(source)
    originals = tmp_path / "originals"
    originals.mkdir()
    for source in sorted(imagenet_dir.iterdir())[:24]:
        (originals / source.name).symlink_to(source)
    record = tmp_path / "quality.md"
    result = subprocess.run(
        [sys.executable, "-m", "precompute.evaluate", "--model", "efficientnet-lite0", "--holidays", str(holidays),
         "--originals", str(originals), "--copies", "8", "--workers", "1", "--record", str(record)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    row = result.stdout.strip().splitlines()[-1]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0].startswith("efficientnet-lite0, gem pooling, scales 288, αQE n=2")  # the defaults
    holidays_map, top1, top10 = map(float, cells[1:4])
    assert 0.0 < holidays_map <= 1.0 and 0.0 < top1 <= top10 <= 1.0
    assert record.read_text().strip() == row
