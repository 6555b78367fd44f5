import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from precompute.index_file import FORMAT_VERSION, IndexFileError, read_index, system_folder, write_index
from tests.index_samples import RunsCode, valid_index


def small_index(n: int = 3, k: int = 2, dim: int = 4) -> dict:
    return valid_index(n, k, dim)


def test_round_trip_keeps_everything(tmp_path):
    index = small_index()
    write_index(index, tmp_path / "index.pkl")
    loaded = read_index(tmp_path / "index.pkl")
    assert loaded["photos"] == index["photos"]
    for key in ("embeddings", "neighbors", "scores"):
        np.testing.assert_array_equal(loaded[key], index[key])
        assert loaded[key].dtype == index[key].dtype


def test_write_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "index.pkl"
    write_index(small_index(3), target)
    write_index(small_index(4), target)
    assert len(read_index(target)["photos"]) == 4
    assert os.listdir(tmp_path) == ["index.pkl"]


def test_a_failed_write_keeps_the_previous_index(tmp_path):
    target = tmp_path / "index.pkl"
    write_index(small_index(3), target)
    broken = small_index(5)
    broken["unpicklable"] = lambda: None
    with pytest.raises(Exception):
        write_index(broken, target)
    assert len(read_index(target)["photos"]) == 3
    assert os.listdir(tmp_path) == ["index.pkl"]


def test_restricted_unpickler_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    index = small_index()
    index["photos"][0]["path"] = RunsCode(marker)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(index))
    with pytest.raises(IndexFileError, match="refusing to load"):
        read_index(tmp_path / "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda i: i.update(version=FORMAT_VERSION + 1), "not supported"),
        (lambda i: i.update(format="other"), "not a Lookalike index"),
        (lambda i: i.update(embeddings=i["embeddings"][:2]), "rows"),
        (lambda i: i.update(neighbors=i["neighbors"] + 10), "not in the index"),
        (lambda i: i.update(scores=i["scores"].astype(np.float64)), "float32"),
    ],
)
def test_damaged_indexes_are_refused_with_a_reason(tmp_path, damage, message):
    index = small_index()
    damage(index)
    write_index(index, tmp_path / "index.pkl")
    with pytest.raises(IndexFileError, match=message):
        read_index(tmp_path / "index.pkl")


def test_truncated_and_missing_files_are_refused(tmp_path):
    write_index(small_index(), tmp_path / "index.pkl")
    data = (tmp_path / "index.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFileError, match="damaged"):
        read_index(tmp_path / "cut.pkl")
    with pytest.raises(IndexFileError, match="not found"):
        read_index(tmp_path / "missing.pkl")


@pytest.mark.parametrize("folder", ["/", "/etc", "/etc/ssl", "/home", "/usr/share/photos", "/proc/1", "/root/photos",
                                    "/var", "/var/lib", "/var/log/nginx", "/dev/shm", "/boot"])
def test_system_folders(folder):
    assert system_folder(Path(folder))


@pytest.mark.parametrize("folder", ["/home/me/Pictures", "/srv/photos", "/var/lib/lookalike", "/tmp/photos",
                                    "/app/photos", "/mnt/nas/photos", "/work/data/demo-photos"])
def test_photo_folders_that_are_not_system_folders(folder):
    assert not system_folder(Path(folder))
