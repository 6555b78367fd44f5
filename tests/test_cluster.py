"""`--ray`: decode and embed on a real multi-node Ray cluster (raylets on 127.0.0.1), with the local run's result.

The cluster is started once for the module (tests.support.ray_cluster); each build
joins it through its address, as `python -m precompute --ray ADDRESS` does.
A few dozen photos keep this quick: what matters is that the work crosses
processes and nodes, not how much of it there is.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.index_file import read_index, thumbnail_dir_for
from precompute.build import BuildOptions, build_index
from precompute.cli import EXIT_ERROR, EXIT_INCOMPLETE, main
from tests.support.hostile_photos import BAD, write_corpus
from tests.support.ray_cluster import LOOPBACK, add_worker_node, loopback_cluster, loopback_environment, ray_port, sockets_off_loopback
from tests.support.same_index import assert_same_build, assert_same_index

NO_RAY = "Ray is not installed (pip install -r requirements-cluster.txt)"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason=NO_RAY)
pytestmark = pytest.mark.cluster

# The default descriptor (GeM at 288 px with query expansion), in small batches so that a run has several chunks.
OPTIONS = BuildOptions(model="efficientnet-lite0", k=5, batch_size=4)
PHOTOS = 24
ROOT = Path(__file__).resolve().parent.parent
PROGRESS = re.compile(rb"(\d+)/(\d+) \[")


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
    """Also: mid-run, no process of the cluster (nodes, workers, actors, this driver) has a socket off loopback."""
    index_path = tmp_path / "index.pkl"
    progress, off_loopback = [], []

    def on_progress(count: int) -> None:
        if not progress:
            off_loopback.extend(sockets_off_loopback(os.getpid()))
        progress.append(count)

    report = build_index(holidays_subset, index_path, replace(OPTIONS, ray=cluster.address), on_progress=on_progress)
    assert (report.indexed, report.embedded, report.skipped) == (PHOTOS, PHOTOS, [])
    assert sum(progress) == PHOTOS and len(progress) == PHOTOS // OPTIONS.batch_size
    assert off_loopback == []
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
    assert main([str(folder), "--out", str(local_index), *common]) == EXIT_INCOMPLETE
    local_lines = capsys.readouterr().out.splitlines()
    assert main([str(folder), "--out", str(cluster_index), "--ray", cluster.address, *common]) == EXIT_INCOMPLETE
    cluster_lines = capsys.readouterr().out.splitlines()

    def report(lines: list[str]) -> list[str]:
        """The summary without its timing lines and the index's own path."""
        return [line for line in lines if not line.startswith(("Indexed ", "Re-ranking: ", "Index: ", "Thumbnails: "))]

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


def test_a_node_that_cannot_see_the_photos_stops_the_run_in_one_line(cluster, holidays_subset, tmp_path, capsys):
    """A third node in a mount namespace of its own, where the photo folder is an empty tmpfs: a machine without the share."""
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare --mount` (root, or user namespaces) to give one node its own view of the files")
    alive_before = _alive_nodes(cluster)
    mount_and_start = 'mount -t tmpfs tmpfs "$1" && exec "$2" -m tests.support.ray_cluster "$3"'
    node = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_and_start, "sh", str(holidays_subset), sys.executable, cluster.address],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    index_path = tmp_path / "index.pkl"
    try:
        assert node.stdout.readline() == b"ready\n"
        while _alive_nodes(cluster) <= alive_before:
            assert node.poll() is None
            time.sleep(0.2)
        code = main([str(holidays_subset), "--out", str(index_path), "--ray", cluster.address, "--model", "efficientnet-lite0"])
    finally:
        node.terminate()
        node.wait(timeout=60)
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and err.count("\n") == 1, err
    assert err.startswith("error: node 127.0.0.1 (") and f"cannot read {holidays_subset}/" in err
    assert err.endswith("every node must see the photos and the index folder at the same paths; no index written\n")
    assert not index_path.exists()


def _alive_nodes(cluster) -> int:
    return sum(1 for node in cluster.global_state.node_table() if node["Alive"])


def test_cuda_on_a_cluster_without_gpus_fails_in_one_line(cluster, holidays_subset, tmp_path, capsys):
    args = [str(holidays_subset), "--out", str(tmp_path / "index.pkl"), "--ray", cluster.address, "--device", "cuda"]
    assert main([*args, "--model", "efficientnet-lite0"]) == EXIT_ERROR
    assert capsys.readouterr().err == "error: --device cuda was asked for, but the Ray cluster has no GPU; no index written\n"


def test_without_ray_installed_one_line_says_what_to_install(holidays_subset, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does where Ray is not installed
    assert main([str(holidays_subset), "--out", str(tmp_path / "index.pkl"), "--ray", "auto", "--model", "efficientnet-lite0"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "error: --ray needs Ray, which is not installed: pip install -r requirements-cluster.txt; no index written\n"
    assert not (tmp_path / "index.pkl").exists()


@needs_ray
def test_an_address_with_no_cluster_fails_in_one_line(holidays_subset, tmp_path, capsys):
    address = f"127.0.0.1:{ray_port()}"  # free: nothing listens there
    assert main([str(holidays_subset), "--out", str(tmp_path / "index.pkl"), "--ray", address, "--model", "efficientnet-lite0"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Ray cluster at {address}: ") and err.count("\n") == 1


def run_cli(*args: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "precompute", *args, "--model", "efficientnet-lite0", "--batch-size", "4", "--k", "5"]
    return subprocess.Popen(command, cwd=ROOT, **popen)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_driver_leaves_the_previous_index_untouched(cluster, holidays_subset, tmp_path, signum):
    """SIGKILL: the driver gets no chance to tidy up; SIGTERM: it stops as a local run does (exit 130, one line).

    Either way the cluster drops its work, and the old index stays as it was.
    """
    index_path = tmp_path / "index.pkl"
    first = tmp_path / "first-photos"
    first.mkdir()
    for photo in sorted(holidays_subset.iterdir())[:3]:
        (first / photo.name).symlink_to(photo.resolve())
    build_index(first, index_path, OPTIONS)  # from another folder: the run below embeds all its photos again
    before = index_path.read_bytes()
    run = run_cli(str(holidays_subset), "--out", str(index_path), "--ray", cluster.address, stderr=subprocess.PIPE)
    seen = b""
    try:
        while not any(0 < int(done) < int(total) for done, total in PROGRESS.findall(seen)):
            chunk = run.stderr.read1(4096)
            assert chunk, f"the run ended before it could be killed: {seen.decode(errors='replace')}"
            seen += chunk
        run.send_signal(signum)
        status = run.wait(timeout=120)
    finally:
        run.kill()
        run.wait()
    if signum == signal.SIGTERM:
        seen += run.stderr.read()
        assert status == 130, seen.decode(errors="replace")
        assert b"interrupted by SIGTERM: the previous index, if any, is unchanged" in seen
        assert b"Traceback" not in seen and b"SIGTERM received" not in seen  # Ray's native handler prints the latter
    assert index_path.read_bytes() == before
    assert [p.name for p in index_path.parent.iterdir() if ".tmp" in p.name] == []
    assert len(read_index(index_path).photos) == 3


@needs_ray
def test_the_command_line_on_a_cluster_started_with_ray_start(holidays_subset, local_build, tmp_path):
    """`ray start --head` on loopback, then `python -m precompute --ray 127.0.0.1:PORT`, both as a user types them."""
    port = ray_port()
    ray_cli = Path(sys.executable).with_name("ray")
    head = [str(ray_cli), "start", "--head", "--block", "--node-ip-address", LOOPBACK, "--port", str(port),
            "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    with loopback_environment():
        started = subprocess.Popen(head, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            index_path = tmp_path / "index.pkl"
            run = run_cli(str(holidays_subset), "--out", str(index_path), "--ray", f"{LOOPBACK}:{port}",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_without_ray_address())
            out, err = run.communicate(timeout=600)
        finally:
            os.killpg(started.pid, signal.SIGTERM)  # --block: the head stops its own processes on SIGTERM
            started.wait(timeout=60)
    assert run.returncode == 0, err.decode(errors="replace")[-2000:]
    assert f"Indexed {PHOTOS} photos" in out.decode()
    assert_same_as_local(index_path, local_build)


def _without_ray_address() -> dict:
    return {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}


@needs_ray
def test_the_example_cluster_config_passes_ray_ups_own_checks():
    """docs/ray-cluster.yaml is what docs/cluster.md tells people to `ray up`: Ray's schema must accept it, offline."""
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "docs" / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))
    assert config["available_node_types"]["gpu"]["min_workers"] == 1
    assert all("requirements-cluster.txt" in command for command in config["setup_commands"][-1:])
