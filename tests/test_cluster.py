"""`--ray`: decode and embed on a real multi-node Ray cluster (raylets on 127.0.0.1), with the local run's result.

The cluster is started once for the module (tests.ray_cluster); each build
joins it through its address, as `python -m precompute --ray ADDRESS` does.
A few dozen photos keep this quick: what matters is that the work crosses
processes and nodes, not how much of it there is.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from precompute.build import BuildOptions, build_index, thumbnail_dir_for
from precompute.cli import EXIT_ERROR, EXIT_SOME_SKIPPED, main
from precompute.index_file import read_index
from tests.hostile_photos import BAD, write_corpus
from tests.ray_cluster import add_worker_node, loopback_cluster, ray_port
from tests.same_index import assert_same_build, assert_same_index

NO_RAY = "Ray is not installed (pip install -r requirements-cluster.txt)"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason=NO_RAY)

# The default descriptor (GeM at 288 px with query expansion), in small batches so that a run has several chunks.
OPTIONS = BuildOptions(model="efficientnet-lite0", k=5, batch_size=4)
PHOTOS = 24


@pytest.fixture(scope="module")
def cluster():
    if importlib.util.find_spec("ray") is None:
        pytest.skip(NO_RAY)
    with loopback_cluster(nodes=2) as started:
        yield started


@pytest.fixture(scope="module")
def holidays_subset(holidays_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("holidays-subset")
    for photo in sorted(holidays_dir.glob("*.jpg"))[:PHOTOS]:
        (folder / photo.name).symlink_to(photo)
    return folder


@pytest.fixture(scope="module")
def local_build(holidays_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_path = tmp_path_factory.mktemp("local") / "index.pkl"
    build_index(holidays_subset, index_path, OPTIONS)
    return index_path


def assert_same_as_local(index_path: Path, local_index: Path) -> None:
    assert_same_build(read_index(index_path), thumbnail_dir_for(index_path), read_index(local_index), thumbnail_dir_for(local_index))


def test_a_cluster_build_equals_the_local_build(cluster, holidays_subset, local_build, tmp_path):
    index_path = tmp_path / "index.pkl"
    progress = []
    report = build_index(holidays_subset, index_path, replace(OPTIONS, ray=cluster.address), on_progress=progress.append)
    assert (report.indexed, report.embedded, report.skipped) == (PHOTOS, PHOTOS, [])
    assert sum(progress) == PHOTOS and len(progress) == PHOTOS // OPTIONS.batch_size
    assert_same_as_local(index_path, local_build)


def test_an_update_through_the_cluster_equals_a_full_local_rebuild(cluster, holidays_dir, tmp_path):
    photos = sorted(holidays_dir.glob("*.jpg"))[: PHOTOS + 3]
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos[:PHOTOS]:
        shutil.copy2(photo, folder / photo.name)
    index_path = tmp_path / "cluster" / "index.pkl"
    on_cluster = replace(OPTIONS, ray=cluster.address)
    build_index(folder, index_path, on_cluster)

    (folder / photos[0].name).unlink()
    shutil.copyfile(photos[PHOTOS + 2], folder / photos[5].name)  # new content under an old name
    for photo in photos[PHOTOS : PHOTOS + 2]:
        shutil.copy2(photo, folder / photo.name)
    update = build_index(folder, index_path, on_cluster)
    assert (update.added, update.changed, update.removed, update.reused) == (2, 1, 1, PHOTOS - 2)

    full_path = tmp_path / "local" / "index.pkl"
    build_index(folder, full_path, OPTIONS)
    assert_same_index(read_index(index_path), read_index(full_path))


def test_bad_files_get_the_same_report_as_a_local_run(cluster, tmp_path, capsys):
    folder = tmp_path / "hostile"
    folder.mkdir()
    write_corpus(folder)
    local_index, cluster_index = tmp_path / "local" / "index.pkl", tmp_path / "cluster" / "index.pkl"
    common = ["--model", "efficientnet-lite0", "--batch-size", "4", "--k", "3"]
    assert main([str(folder), "--out", str(local_index), *common]) == EXIT_SOME_SKIPPED
    local_lines = capsys.readouterr().out.splitlines()
    assert main([str(folder), "--out", str(cluster_index), "--ray", cluster.address, *common]) == EXIT_SOME_SKIPPED
    cluster_lines = capsys.readouterr().out.splitlines()

    def report(lines: list[str]) -> list[str]:
        """The summary without its timing line and the index's own path."""
        return [line for line in lines if not line.startswith(("Indexed ", "Index: ", "Thumbnails: "))]

    assert report(cluster_lines) == report(local_lines)
    assert f"Skipped {len(BAD)}:" in cluster_lines
    assert_same_as_local(cluster_index, local_index)


def test_a_node_that_dies_mid_run_costs_nothing(cluster, holidays_subset, local_build, tmp_path):
    """A third node joins, takes its share of tasks and an embedding actor, and is killed after the first batch."""
    doomed = add_worker_node(cluster)
    removed = []

    def remove_after_first_batch(count: int) -> None:
        if not removed:
            cluster.remove_node(doomed, allow_graceful=False)
            removed.append(count)

    index_path = tmp_path / "index.pkl"
    report = build_index(holidays_subset, index_path, replace(OPTIONS, ray=cluster.address), on_progress=remove_after_first_batch)
    assert removed and report.indexed == PHOTOS and not report.skipped
    assert_same_as_local(index_path, local_build)


def test_without_ray_installed_one_line_says_what_to_install(holidays_subset, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does where Ray is not installed
    assert main([str(holidays_subset), "--out", str(tmp_path / "index.pkl"), "--ray", "auto", "--model", "efficientnet-lite0"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "error: --ray needs Ray, which is not installed: pip install -r requirements-cluster.txt\n"
    assert not (tmp_path / "index.pkl").exists()


@needs_ray
def test_an_address_with_no_cluster_fails_in_one_line(holidays_subset, tmp_path, capsys):
    address = f"127.0.0.1:{ray_port()}"  # free: nothing listens there
    assert main([str(holidays_subset), "--out", str(tmp_path / "index.pkl"), "--ray", address, "--model", "efficientnet-lite0"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Ray cluster at {address}: ") and err.count("\n") == 1
