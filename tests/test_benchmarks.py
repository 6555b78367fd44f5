"""`python -m benchmarks` runs end to end at toy sizes and prints its table: the figures are not judged here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _benchmark(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "benchmarks", *args, "--rounds", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_benchmark_is_found():
    from benchmarks.__main__ import discover

    assert {"embedding", "neighbours", "serving", "cluster"} <= set(discover())


def test_the_neighbours_benchmark_prints_its_table_and_agrees_with_faiss():
    table = _benchmark("neighbours", "--sizes", "600", "--approx-sizes")
    assert "| figure" in table and "ours vs faiss IndexFlatIP (N=600" in table
    agreement = next(line for line in table.splitlines() if "rows whose neighbours equal faiss's" in line)
    assert "| 100 %" in agreement


def test_the_embedding_benchmark_runs_at_toy_sizes(imagenet_dir):
    table = _benchmark("embedding", "--photos", "4", "--large", "1", "--imagenet", str(imagenet_dir))
    for figure in ("pipeline vs model-only (efficientnet-lite0, 224 px: the default",
                   "CPU ms per photo", "12 MP: pipeline vs one-at-a-time", "prepare ms/photo"):
        assert figure in table


@pytest.mark.cluster
def test_the_cluster_benchmark_runs_at_toy_sizes(holidays_dir):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install -r requirements-cluster.txt)")
    table = _benchmark("cluster", "--cluster-photos", "8", "--holidays", str(holidays_dir))
    for figure in ("whole build of 8 photos: cluster vs local", "fixed cost per build", "time per added photo",
                   "one core: inference per photo", "through Ray's object store"):
        assert figure in table


def test_the_approx_and_update_benchmarks_run_at_toy_sizes():
    table = _benchmark("neighbours", "neighbour-update", "--sizes", "--approx-sizes", "1500", "--update-photos", "1500",
                       "--million", "2000")
    assert "approx (IVF) vs exact (N=1,500, clustered, d=1280, k=10; auto picks exact; approx: load average" in table
    assert "approx (IVF) vs exact: CPU time of the search (N=1,500" in table
    assert "neighbours with --neighbours auto (exact) (N=2,000, clustered, d=1280, k=10; load average" in table
    recall = next(line for line in table.splitlines() if "recall@10 of auto against exact" in line)
    assert "| 1.00 " in recall  # auto is exact at this size
    assert "neighbour step: update vs full exact (+15 to N=1,500" in table
    assert "neighbour step: update vs full exact, CPU time (+15 to N=1,500" in table
    equal = next(line for line in table.splitlines() if "sampled rows whose updated list equals exact" in line)
    assert "| 100 %" in equal


def test_the_folders_benchmark_runs_at_toy_sizes():
    table = _benchmark("folders", "--folders-photos", "3000", "--folders-dim", "8")
    for figure in ("folder tree at load (3,000 photos", "app load with folders and date order", "a folder's page by date",
                   "gallery page by date", "similar list in=folder", "similar list in=others"):
        assert figure in table


def test_the_duplicates_benchmark_runs_at_toy_sizes():
    table = _benchmark("duplicates", "--duplicates-photos", "3000", "--duplicates-groups", "100")
    for figure in ("groups of 3,000 photos, random pairs", "groups of 3,000 photos, groups of three (1,000 groups)",
                   "/duplicates page 5 of 100 groups vs page 1 of 20 groups",
                   "/duplicates page 1, a group of 3,000 photos first vs of 12",
                   "/api/duplicates?per_page=1 page 1, a group of 3,000 photos first vs of 12"):
        assert figure in table


def test_the_heroku_benchmark_runs_at_toy_sizes():
    table = _benchmark("heroku", "--heroku-photos", "500")
    for figure in ("slug: requirements.txt venv + code (index by URL)", "slug: venv + code + a 500-photo index",
                   "dyno memory (PSS), 500 photos, media public https://", "dyno memory (PSS), 500 photos, media presigned s3://"):
        assert figure in table


def test_the_rerank_benchmark_runs_at_toy_sizes(imagenet_dir):
    done = subprocess.run([sys.executable, "-m", "benchmarks.rerank", "--photos", str(imagenet_dir), "--count", "24",
                           "--fraction", "0.05"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "full, --rerank local" in done.stdout and "Projected to 1,000,000 photos" in done.stdout
    assert "reused" in done.stdout.split("Update: ")[1]
