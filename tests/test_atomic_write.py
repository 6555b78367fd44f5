"""The one atomic-write helper: whole files or none, with the permissions each caller asked for."""

import os

import pytest

from core.atomic_write import atomic_file
from tools.publish_record import PublishRecord


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_file_gets_the_permissions_open_would_give_it(tmp_path, umask_022):
    with atomic_file(tmp_path / "shared.txt", "w") as out:
        out.write("for the web server too")
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644


def test_owner_only_keeps_mkstemps_0600(tmp_path, umask_022):
    with atomic_file(tmp_path / "private.bin", owner_only=True, durable=False) as out:
        out.write(b"mine")
    assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "private.bin").read_bytes() == b"mine"


def test_publishs_record_is_owner_only_on_purpose(tmp_path, umask_022):
    """Only publish reads it, and it names the destination bucket: the web server has no use for it."""
    record = PublishRecord(tmp_path / "index-published.json", "s3://bucket/")
    record.save()
    assert (tmp_path / "index-published.json").stat().st_mode & 0o777 == 0o600


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "index.pkl"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as out:
            out.write(b"half of the new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.pkl"]
