"""The evaluation command's metrics and near-duplicate set, and one small end-to-end run."""

import hashlib
import json
import subprocess
import sys

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from core.index_file import ModelInfo
from tools.evaluate.measures import list_recall
from tools.evaluate.metrics import average_precision, mean_average_precision, recall_of_originals
from tools.evaluate.near_duplicates import KINDS, make_copies


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


def test_list_recall_counts_the_exact_neighbours_an_index_lists():
    embeddings = np.eye(4, dtype=np.float32)
    embeddings[1] = [0.8, 0.6, 0, 0]
    embeddings[2] = [0.6, 0.8, 0, 0]
    embeddings[3] = [0.1, 0, 0, np.sqrt(0.99)]
    exact = np.array([[1, 2], [2, 0], [1, 0], [0, 1]], dtype=np.int32)
    index = SimpleNamespace(embeddings=embeddings, neighbours=exact.copy(), model=ModelInfo())
    assert list_recall(index).tolist() == [1.0, 1.0, 1.0, 1.0]
    index.neighbours[0] = [1, 3]  # one of row 0's two exact neighbours missed
    assert list_recall(index).tolist() == [0.5, 1.0, 1.0, 1.0]


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


@pytest.mark.slow
def test_evaluate_command_compares_each_configuration_with_the_baseline_on_both_halves(holidays_dir, imagenet_dir, tmp_path):
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    for source in sorted(holidays_dir.glob("100[0-4]*.jpg")):  # scenes 1000, 1002, 1004 tune; 1001, 1003 confirm
        (holidays / source.name).symlink_to(source)
    originals = tmp_path / "originals"
    originals.mkdir()
    for source in sorted(imagenet_dir.iterdir())[:24]:
        (originals / source.name).symlink_to(source)
    record, scores = tmp_path / "quality.md", tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "tools.evaluate", "--model", "efficientnet-lite0", "--pooling", "avg", "--scales", "224",
         "--query-expansion", "0", "--rerank", "off", "--also=--pooling gem", "--also=--scales 224 --pooling gem",
         "--holidays", str(holidays),
         "--originals", str(originals), "--copies", "8", "--workers", "1", "--record", str(record), "--scores", str(scores)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| efficientnet")]
    assert [row[0] for row in rows] == ["efficientnet-lite0, avg pooling, scales 224 (the baseline)",
                                        "efficientnet-lite0, gem pooling, scales 224"]  # the repeat measured once
    baseline, gem = rows
    assert baseline[1].startswith("1.00 (") and "ms a photo" in baseline[1] and baseline[3] == baseline[5] == ""
    for half_map, half_difference in ((2, 3), (4, 5)):
        mean, low, high = map(float, gem[half_difference].replace("[", "").replace("]", "").replace(",", "").split())
        assert low <= mean <= high and abs(float(gem[half_map]) - float(baseline[half_map]) - mean) < 0.0015
    top1, top10 = map(float, gem[6].split(" / "))
    assert 0.0 < top1 <= top10 <= 1.0 and 0.0 < float(gem[7]) <= 1.0
    lists = [line for line in lines if line.startswith("Neighbour lists of ")]
    assert [line.split(" (")[0] for line in lists] == [f"Neighbour lists of {row[0].removesuffix(' (the baseline)')}" for row in rows]
    assert all("(exact): recall@10 against exact lists: holidays-dev 1.000, originals 1.000, near-duplicate edits 1.000;" in line
               for line in lists)  # exact lists hold every exact neighbour
    assert lines[-1].startswith("Verdict: ")
    assert record.read_text().strip().endswith(lines[-1])
    measured = json.loads(scores.read_text())
    assert [len(m["holidays"]["tune"]) for m in measured] == [3, 3] and [len(m["holidays"]["confirm"]) for m in measured] == [2, 2]
    assert len(measured[0]["category"]) == 24  # one AP@10 per original with a category
