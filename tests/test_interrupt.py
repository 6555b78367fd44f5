"""Stopping a run partway (Ctrl-C, SIGTERM) leaves the previous index as it was, and usable."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core.index_file import read_index, thumbnail_dir_for, write_index
from precompute.build import BuildOptions, build_index
from precompute.cli import EXIT_INTERRUPTED
from tests.support.paused_run import start_paused, wait_until_paused


@pytest.fixture
def previous_index(holidays_dir: Path, tmp_path: Path) -> Path:
    """A small index of three photos: the one an interrupted run must not damage."""
    folder = tmp_path / "previous-photos"
    folder.mkdir()
    for photo in sorted(holidays_dir.glob("*.jpg"))[:3]:
        (folder / photo.name).symlink_to(photo)
    index_path = tmp_path / "out" / "index.pkl"
    build_index(folder, index_path, BuildOptions(model="efficientnet-lite0", workers=0))
    return index_path


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, workers, to_group",
    [(signal.SIGINT, 1, True), (signal.SIGTERM, 0, False), (signal.SIGTERM, 1, True)],
    ids=["Ctrl-C-to-the-group", "kill-the-process", "SIGTERM-to-the-group"],
)
def test_a_killed_run_leaves_the_previous_index_untouched(signum, workers, to_group, previous_index, holidays_dir, tmp_path):
    """A terminal's Ctrl-C and a service manager's stop reach every process of the group, decoders too.

    The run pauses before embedding its second batch (tests.support.paused_run): the signal lands mid-run
    however busy the machine is, with a decoder process running when there is one.
    """
    before = previous_index.read_bytes()
    args = [str(holidays_dir), "--out", str(previous_index)]
    args += ["--model", "efficientnet-lite0", "--workers", str(workers), "--batch-size", "1"]
    with open(tmp_path / "stderr", "w+b") as stderr:
        run = start_paused("precompute.cli.main", args, "precompute.embed.embed_batch", 2, stderr=stderr, new_group=to_group)
        try:
            wait_until_paused(run)
            if to_group:
                os.killpg(run.pid, signum)
            else:
                run.send_signal(signum)
            code = run.wait(timeout=120)
        finally:
            run.kill()
            run.communicate()
        stderr.seek(0)
        message = stderr.read().decode()

    assert code == EXIT_INTERRUPTED, message
    assert f"interrupted by {signal.Signals(signum).name}: the previous index, if any, is unchanged" in message
    assert "Traceback" not in message
    assert previous_index.read_bytes() == before
    index = read_index(previous_index)
    assert len(index.photos) == 3
    thumbnails = thumbnail_dir_for(previous_index)
    assert all((thumbnails / t["file"]).is_file() for p in index.photos for t in p["thumbnails"].values())
    assert leftovers(previous_index.parent) == []


class _Interrupts:
    """Pickling this stops the writer midway, like Ctrl-C while the index is being written."""

    def __reduce__(self):
        raise KeyboardInterrupt


def test_interrupting_the_write_itself_keeps_the_old_file(tmp_path):
    path = tmp_path / "index.pkl"
    path.write_bytes(b"the previous index")
    with pytest.raises(KeyboardInterrupt):
        write_index({"photos": bytes(4 * 2**20), "later": _Interrupts()}, path)
    assert path.read_bytes() == b"the previous index"
    assert leftovers(tmp_path) == []
