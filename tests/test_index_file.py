import io
import os
import pickle
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic_index import as_format_1
from core.index_file import (
    FORMAT_VERSION,
    Index,
    IndexFileError,
    ModelInfo,
    PhotoTable,
    dump_index,
    read_index,
    system_folder,
    thumbnail_name,
    write_index,
)
from precompute.thumbnails import write_thumbnails
from tests.support.index_samples import RunsCode, photo_record, valid_index


def small_index(n: int = 3, k: int = 2, dim: int = 4) -> Index:
    return valid_index(n, k, dim)


def test_round_trip_keeps_everything(tmp_path):
    index = small_index()
    write_index(index, tmp_path / "index.pkl")
    loaded = read_index(tmp_path / "index.pkl")
    assert loaded.photos == index.photos
    assert list(loaded.photos) == [photo_record(i) for i in range(3)]
    for name in ("embeddings", "neighbours", "scores"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
        assert getattr(loaded, name).dtype == getattr(index, name).dtype
    for name in ("created", "model", "photo_root", "thumbnail_dir", "next_id", "skipped"):
        assert getattr(loaded, name) == getattr(index, name)
    assert loaded.model.as_dict() == {"name": "test", "dim": 4, "weights": "none", "preprocessing": {}}  # as recorded


def test_awkward_paths_survive_the_round_trip(tmp_path):
    """Emoji, markup and names that are not valid UTF-8 on disk (kept through surrogateescape)."""
    names = ["café/😀.jpg", "a<b>&c.png", b"caf\xe9.jpg".decode("utf-8", "surrogateescape"), "x" * 300 + ".jpg"]
    records = [{**photo_record(i), "path": name} for i, name in enumerate(names)]
    index = replace(small_index(4), photos=PhotoTable.from_records(records))
    write_index(index, tmp_path / "index.pkl")
    assert [photo["path"] for photo in read_index(tmp_path / "index.pkl").photos] == names


def test_arrays_are_mapped_from_the_file_not_copied(tmp_path):
    index = valid_index(50, 3, 16)
    write_index(index, tmp_path / "index.pkl")
    loaded = read_index(tmp_path / "index.pkl")
    for array in (loaded.embeddings, loaded.neighbours, loaded.photos.ids):
        assert not array.flags.writeable and not array.flags.owndata
    maps = (tmp_path / "index.pkl").resolve().as_posix()
    assert maps in open(f"/proc/{os.getpid()}/maps").read()


def test_the_table_of_contents_reads_as_a_plain_pickle(tmp_path):
    """An older Lookalike's reader sees the format marker and a version it does not know: a clear refusal."""
    write_index(small_index(), tmp_path / "index.pkl")
    with open(tmp_path / "index.pkl", "rb") as file:
        contents = pickle.load(file)
    assert contents["format"] == "lookalike-index" and contents["version"] == FORMAT_VERSION


def test_write_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "index.pkl"
    write_index(small_index(3), target)
    write_index(small_index(4), target)
    assert len(read_index(target).photos) == 4
    assert os.listdir(tmp_path) == ["index.pkl"]


def test_a_failed_write_keeps_the_previous_index(tmp_path):
    target = tmp_path / "index.pkl"
    write_index(small_index(3), target)
    broken = small_index(5).as_dict()
    broken["unpicklable"] = lambda: None
    with pytest.raises(Exception):
        write_index(broken, target)
    assert len(read_index(target).photos) == 3
    assert os.listdir(tmp_path) == ["index.pkl"]


def test_restricted_unpickler_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    index = small_index().as_dict()
    index["created"] = RunsCode(marker)
    write_index(index, tmp_path / "evil.pkl")
    with pytest.raises(IndexFileError, match="refusing to load"):
        read_index(tmp_path / "evil.pkl")
    assert not marker.exists()


def _columns(index: dict) -> dict:
    return index["photos"].columns


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda i: i.update(version=FORMAT_VERSION + 1), "not supported"),
        (lambda i: i.update(format="other"), "not a Lookalike index"),
        (lambda i: i.update(embeddings=i["embeddings"][:2]), "rows"),
        (lambda i: i.update(embeddings=i["embeddings"].astype(np.float16)), "'embeddings' must be a 2-d float32"),
        (lambda i: i.update(neighbors=i["neighbors"] + 10), "not in the index"),
        (lambda i: i.update(scores=i["scores"].astype(np.float64)), "float32"),
        (lambda i: i.update(photos=[photo_record(0)]), "dict of columns"),
        (lambda i: _columns(i).update(id=np.array([0, 1, 1])), "unique"),
        (lambda i: _columns(i).update(id=np.array([0, -1, 2])), "negative"),
        (lambda i: _columns(i).update(sha1=_columns(i)["sha1"][:, :10]), "'sha1' has shape"),
        (lambda i: _columns(i).update(size=_columns(i)["size"].astype(np.int32)), "'size' must be a 1-d int64"),
        (lambda i: _columns(i).pop("thumbnail_key"), "'thumbnail_key'"),
        (lambda i: _columns(i)["path_offsets"].__setitem__(1, 99), "path_offsets"),
        (lambda i: _columns(i)["path_offsets"].__setitem__(2, 3), "path_offsets"),
        (lambda i: _columns(i).update(path_bytes=np.frombuffer(b"p0.jpg\x001.jpgp2.jpg", np.uint8)), "NUL"),
    ],
)
def test_damaged_indexes_are_refused_with_a_reason(tmp_path, damage, message):
    index = small_index().as_dict()
    damage(index)
    write_index(index, tmp_path / "index.pkl")
    with pytest.raises(IndexFileError, match=message):
        read_index(tmp_path / "index.pkl")


def test_truncated_and_missing_files_are_refused(tmp_path):
    write_index(small_index(), tmp_path / "index.pkl")
    data = (tmp_path / "index.pkl").read_bytes()
    for cut, message in ((100, "damaged"), (300, "truncated"), (0, "damaged")):
        (tmp_path / "cut.pkl").write_bytes(data[:cut])
        with pytest.raises(IndexFileError, match=message):
            read_index(tmp_path / "cut.pkl")
    with pytest.raises(IndexFileError, match="not found"):
        read_index(tmp_path / "missing.pkl")


def test_a_truncated_buffer_section_is_refused_in_one_line(tmp_path):
    write_index(small_index(), tmp_path / "index.pkl")
    data = (tmp_path / "index.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[:-10])
    with pytest.raises(IndexFileError, match="truncated") as refused:
        read_index(tmp_path / "cut.pkl")
    assert "\n" not in str(refused.value)


def _with_contents(index: Index, edit, tail: bytes = b"") -> bytes:
    """The index file's bytes with its table of contents edited; the pickle and data section as written."""
    out = io.BytesIO()
    dump_index(index, out)
    file = io.BytesIO(out.getvalue())
    contents = pickle.load(file)
    stream = file.read(contents["stream_bytes"])
    data = out.getvalue()[_aligned(file.tell()) :]
    edit(contents)
    head = pickle.dumps(contents, protocol=5) + stream
    return head + bytes(_aligned(len(head)) - len(head)) + data + tail


def _aligned(offset: int) -> int:
    return -(-offset // 4096) * 4096


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["buffers"].__setitem__(0, [10**12, 8]), "truncated"),
        (lambda c: c["buffers"].__setitem__(1, [0, 8]), "overlap"),
        (lambda c: c["buffers"].__setitem__(0, [1, 8]), "page-aligned"),
        (lambda c: c["buffers"].__setitem__(0, [0, -8]), "table of contents is damaged"),
        (lambda c: c["buffers"].__setitem__(0, "everything"), "table of contents is damaged"),
        (lambda c: c.update(buffers=None), "table of contents is damaged"),
        (lambda c: c["buffers"].pop(), "damaged or not a Lookalike index"),
        (lambda c: c.update(buffers=[[4096 * i, 0] for i in range(10_000)]), "lists 10000 data buffers; an index has at most 64"),
    ],
)
def test_a_hostile_buffer_table_is_refused_in_one_line(tmp_path, edit, message):
    (tmp_path / "index.pkl").write_bytes(_with_contents(small_index(), edit))
    with pytest.raises(IndexFileError, match=message) as refused:
        read_index(tmp_path / "index.pkl")
    assert "\n" not in str(refused.value)


def test_buffers_the_pickle_does_not_use_are_refused(tmp_path):
    extra = lambda c: c["buffers"].append([c["buffers"][-1][0] + 4096, 8])  # noqa: E731
    (tmp_path / "index.pkl").write_bytes(_with_contents(small_index(), extra, tail=bytes(8192)))
    with pytest.raises(IndexFileError, match=r"lists \d+ data buffers, its pickle uses \d+") as refused:
        read_index(tmp_path / "index.pkl")
    listed, used = map(int, re.search(r"lists (\d+) .* uses (\d+)", str(refused.value)).groups())
    assert listed == used + 1


def test_a_pickle_that_ends_elsewhere_than_its_table_says_is_refused(tmp_path):
    def longer(contents):
        contents["stream_bytes"] += 1

    (tmp_path / "index.pkl").write_bytes(_with_contents(small_index(), longer))
    with pytest.raises(IndexFileError, match="does not end where its table of contents says"):
        read_index(tmp_path / "index.pkl")


def test_buffers_that_do_not_match_their_declared_shapes_are_refused(tmp_path):
    """The table of contents gives the embeddings' buffer fewer bytes than the pickle's shape needs."""
    index = small_index()
    nbytes = index.embeddings.nbytes

    def shrink(contents):
        entry = next(entry for entry in contents["buffers"] if entry[1] == nbytes)
        entry[1] -= 4

    (tmp_path / "index.pkl").write_bytes(_with_contents(index, shrink))
    with pytest.raises(IndexFileError, match="does not match its array's declared dtype and shape"):
        read_index(tmp_path / "index.pkl")


def test_a_version_1_index_is_refused_with_how_to_upgrade(tmp_path):
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(as_format_1(small_index()), protocol=5))
    with pytest.raises(IndexFileError, match=r"format version 1.*python -m precompute PHOTOS --out") as refused:
        read_index(tmp_path / "index.pkl")
    assert "\n" not in str(refused.value)


def test_a_version_1_index_is_upgraded_for_the_pipeline(tmp_path):
    index = small_index()
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(as_format_1(index), protocol=5))
    upgraded = read_index(tmp_path / "index.pkl", upgrade=True)
    assert upgraded.photos == index.photos
    np.testing.assert_array_equal(upgraded.embeddings, index.embeddings)


def test_a_damaged_version_1_record_is_refused_when_upgrading(tmp_path):
    old = as_format_1(small_index())
    old["photos"][1]["thumbnails"]["thumb"]["file"] = "../../etc/passwd"
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(old, protocol=5))
    with pytest.raises(IndexFileError, match="photo 1: thumbnail 'thumb' must be named like"):
        read_index(tmp_path / "index.pkl", upgrade=True)


def test_thumbnail_names_come_from_the_content_hash():
    assert thumbnail_name("ab" * 20, "thumb") == "abababababababababab-thumb.jpg"


@pytest.mark.parametrize("edit", [
    lambda photo: photo["thumbnails"]["thumb"].update(width=70_000),
    lambda photo: photo.update(size=2**70),
    lambda photo: photo.update(mtime_ns="yesterday"),
])
def test_a_version_1_record_out_of_its_columns_range_is_refused_in_one_line(tmp_path, edit):
    old = as_format_1(small_index())
    edit(old["photos"][2])
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(old, protocol=5))
    with pytest.raises(IndexFileError, match="photo 2: "):
        read_index(tmp_path / "index.pkl", upgrade=True)
@pytest.mark.parametrize("folder", ["/", "/etc", "/etc/ssl", "/home", "/usr/share/photos", "/proc/1", "/root/photos",
                                    "/var", "/var/lib", "/var/log/nginx", "/dev/shm", "/boot"])
def test_system_folders(folder):
    assert system_folder(Path(folder))


@pytest.mark.parametrize("folder", ["/home/me/Pictures", "/srv/photos", "/var/lib/lookalike", "/tmp/photos",
                                    "/app/photos", "/mnt/nas/photos", "/work/data/demo-photos"])
def test_photo_folders_that_are_not_system_folders(folder):
    assert not system_folder(Path(folder))


def test_the_index_and_its_thumbnails_are_readable_as_files_the_user_creates(tmp_path):
    """Written through temporary files, yet not left owner-only (mkstemp's 0600): a web server may run as another user."""
    umask = os.umask(0o022)
    try:
        write_index(valid_index(), tmp_path / "index.pkl")
        written = write_thumbnails(np.full((30, 40, 3), 128, np.uint8), tmp_path, "cd" * 20)
    finally:
        os.umask(umask)
    files = [tmp_path / "index.pkl", *(tmp_path / entry["file"] for entry in written.values())]
    assert {path.name: path.stat().st_mode & 0o777 for path in files} == {path.name: 0o644 for path in files}


def test_a_model_entry_reads_as_typed_fields_with_the_defaults_older_indexes_imply():
    recorded = {"name": "resnet18", "dim": 512, "weights": "file w.pth", "scales": [224, 320], "preprocessing": {}}
    model = ModelInfo.from_dict(recorded)
    assert (model.name, model.dim, model.scales, model.pooling, model.flip) == ("resnet18", 512, (224, 320), "avg", False)
    assert (model.query_expansion, model.neighbours) == (0, "exact")
    assert model.as_dict() == recorded  # written back as it was: no defaults added
    assert replace(model, flip=True).as_dict() == recorded | {"flip": True}


@pytest.mark.parametrize("entry, message", [
    ("resnet18", "'model' must describe"),
    ({"name": 18}, "'model' must describe the embedding model, with its name"),
    ({"name": "resnet18", "dim": True}, "'model' 'dim' must be of type int, not bool"),
    ({"name": "resnet18", "scales": [224, "320"]}, "'model' 'scales' must be at most"),
])
def test_a_model_entry_of_the_wrong_types_is_refused(tmp_path, entry, message):
    index = small_index().as_dict()
    index["model"] = entry
    write_index(index, tmp_path / "index.pkl")
    with pytest.raises(IndexFileError, match=message):
        read_index(tmp_path / "index.pkl")


def test_models_are_compatible_when_they_make_descriptors_alike():
    built = ModelInfo.from_dict({"name": "efficientnet-lite0", "dim": 1280, "scales": [224], "query_expansion": 2})
    assert built.compatible(replace(built, query_expansion=0, neighbours="approx"))  # applied after embedding
    assert built.mismatch(replace(built, scales=(224, 320))) == "scales: [224], now [224, 320]"
    assert built.mismatch(replace(built, name="resnet18", dim=512)) == "name: 'efficientnet-lite0', now 'resnet18'"
    assert built.compatible(replace(built, weights="elsewhere"), keys=("dim", "preprocessing", "flip"))
