"""`python -m tools.duplicates`: listings, and moves that leave every file whole in exactly one place.

The collection is real: imagenet-samples photos in two albums, each with a
downscaled and a re-saved low-quality copy in other folders, and unrelated
photos besides, indexed by the real pipeline. Tests that move files work on
a copy of the folder (`--photo-root`), so the index stays valid for the others.
"""

import errno
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from tests.support.live_server import ROOT
from tools import duplicate_moves
from tools.duplicate_moves import Move, MoveRefused, move_photo
from tools.evaluate.near_duplicates import save_copy

ORIGINALS, SINGLES = 4, 6
THRESHOLD = "0.55"  # below every copy's score with its original here (0.63 and up), above any other pair's (0.43 at most)


@pytest.fixture(scope="module")
def collection(imagenet_dir, tmp_path_factory):
    """(photo folder, index, {original path: [its copies' paths]})."""
    from precompute.build import BuildOptions, build_index

    root = tmp_path_factory.mktemp("cli-collection")
    photos = root / "photos"
    sources = sorted(imagenet_dir.iterdir())
    rng = random.Random(0)
    expected = {}
    for number, source in enumerate(sources[::250][:ORIGINALS]):  # classes far apart: a tench, a dog, ...
        original = f"album-{'ab'[number % 2]}/{source.stem}.jpg"
        (photos / original).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, photos / original)
        image = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
        copies = [f"small/{source.stem}.jpg", f"resaved/{number}/{source.stem}-q.jpg"]
        for kind, copy in zip(("downscale", "jpeg"), copies):
            (photos / copy).parent.mkdir(parents=True, exist_ok=True)
            save_copy(image, kind, rng, photos / copy)
        expected[original] = copies
    for source in sources[125::150][:SINGLES]:  # other classes, far from those
        shutil.copy2(source, photos / "album-a" / f"{source.stem}.jpg")
    index = root / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", workers=0))
    return photos, index, expected


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.duplicates", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too): relative path -> SHA-1 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_of(photos: Path, tmp_path: Path) -> Path:
    """A copy of the photo folder with the same sizes and times, so the index's records still match it."""
    return Path(shutil.copytree(photos, tmp_path / "photos", copy_function=shutil.copy2))


@pytest.mark.slow
def test_the_listing_groups_each_original_with_its_copies_and_keeps_the_original(collection):
    photos, index, expected = collection
    listing = run(index, "--threshold", THRESHOLD, "--format", "json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    groups = [[photo["path"] for photo in group] for group in data["groups"]]
    # The keep rule's order: the original, then the re-saved copy (as many pixels, a smaller file), then the small one.
    assert sorted(groups) == sorted([original, resaved, small_copy] for original, (small_copy, resaved) in expected.items())
    for group in data["groups"]:
        assert [photo["suggested_keep"] for photo in group] == [True, False, False]
    rows = run(index, "--threshold", THRESHOLD).stdout.splitlines()
    assert rows[0].split(",")[:4] == ["group", "suggested_keep", "id", "path"]
    assert len(rows) == 1 + 3 * ORIGINALS
    assert sum(row.split(",")[1] == "yes" for row in rows[1:]) == ORIGINALS


def test_dry_run_prints_each_move_and_moves_nothing(collection, tmp_path):
    photos, index, expected = collection
    before = tree(photos)
    result = run(index, "--threshold", THRESHOLD, "--move-to", tmp_path / "aside", "--dry-run")
    assert result.returncode == 0, result.stderr
    moves = [line for line in result.stdout.splitlines() if line.startswith("would move ")]
    assert sorted(moves) == sorted(f"would move {photos / copy} -> {tmp_path / 'aside' / copy}"
                                   for copies in expected.values() for copy in copies)
    assert tree(photos) == before and not (tmp_path / "aside").exists()


def test_move_to_moves_exactly_the_listed_files_keeping_their_paths(collection, tmp_path):
    photos, index, _ = collection
    listed = json.loads(run(index, "--threshold", THRESHOLD, "--format", "json").stdout)["groups"]
    to_move = {photo["path"] for group in listed for photo in group if not photo["suggested_keep"]}
    root = copy_of(photos, tmp_path)
    before = tree(root)
    result = run(index, "--threshold", THRESHOLD, "--photo-root", root, "--move-to", tmp_path / "aside")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Moved {len(to_move)} photos" in result.stdout
    assert tree(tmp_path / "aside") == {path: before[path] for path in to_move}
    assert tree(root) == {path: digest for path, digest in before.items() if path not in to_move}


def test_moves_to_another_filesystem_copy_whole_then_remove(collection, tmp_path):
    photos, index, expected = collection
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own to move across filesystems")
    root = copy_of(photos, tmp_path)
    before = tree(root)
    aside = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="lookalike-test-"))
    try:
        moved = {copy for copies in expected.values() for copy in copies}
        times = {path: (root / path).stat().st_mtime_ns for path in moved}
        result = run(index, "--threshold", THRESHOLD, "--photo-root", root, "--move-to", aside)
        assert result.returncode == 0, result.stdout + result.stderr
        assert tree(aside) == {path: before[path] for path in moved}  # no temporary names left
        assert set(tree(root)) == set(before) - moved
        assert {path: (aside / path).stat().st_mtime_ns for path in moved} == times
    finally:
        shutil.rmtree(aside)


def test_a_move_that_fails_part_way_leaves_every_file_whole_in_one_place(collection, tmp_path):
    """One photo vanishes before its turn, and one destination folder cannot be made: both are left as they are."""
    photos, index, expected = collection
    root = copy_of(photos, tmp_path)
    before = tree(root)
    aside = tmp_path / "aside"
    aside.mkdir()
    (aside / "resaved").write_text("a file where the folder should be")  # every move into resaved/ fails
    vanished = expected[next(iter(expected))][0]  # small/...: the first original's downscaled copy
    (root / vanished).unlink()
    result = run(index, "--threshold", THRESHOLD, "--photo-root", root, "--move-to", aside)
    assert result.returncode == 3, result.stdout + result.stderr
    planned = [copy for copies in expected.values() for copy in copies]
    after_root = tree(root)
    for path in planned:
        at_source, at_destination = path in after_root, (aside / path).is_file()
        if path == vanished:
            assert not at_source and not at_destination
        elif path.startswith("resaved/"):
            assert at_source and not at_destination and after_root[path] == before[path]
        else:
            assert at_destination and not at_source and hashlib.sha1((aside / path).read_bytes()).hexdigest() == before[path]
    assert not [p for p in aside.rglob(".*") if p.is_file()], "a temporary copy was left behind"
    summary = result.stdout
    assert f"Moved {ORIGINALS - 1} photos" in summary
    assert f"Not moved, left untouched: {ORIGINALS + 1}:" in summary
    assert f"  {vanished}: it is no longer on disk" in summary
    assert "resaved/0/" in summary and "cannot create the folder" in summary


def test_a_photo_changed_since_indexing_is_not_moved(collection, tmp_path):
    photos, index, expected = collection
    root = copy_of(photos, tmp_path)
    changed = expected[next(iter(expected))][1]
    with open(root / changed, "ab") as file:
        file.write(b"\0")
    result = run(index, "--threshold", THRESHOLD, "--photo-root", root, "--move-to", tmp_path / "aside")
    assert result.returncode == 3
    assert f"  {changed}: it changed since the index was built; index it again first" in result.stdout
    assert (root / changed).is_file() and not (tmp_path / "aside" / changed).exists()


# The copy across filesystems, stopped part-way in this process: the original stays, the partial copy goes.

def _cross_filesystem(monkeypatch):
    real_rename = os.rename

    def rename(source, target):
        if Path(source).name.endswith(".lookalike-move.tmp"):
            return real_rename(source, target)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(duplicate_moves.os, "rename", rename)


@pytest.fixture
def one_photo(tmp_path):
    root, aside = tmp_path / "photos", tmp_path / "aside"
    (root / "a").mkdir(parents=True)
    (root / "a" / "b.jpg").write_bytes(os.urandom(3 << 20))
    info = (root / "a" / "b.jpg").stat()
    return root, aside, Move("a/b.jpg", info.st_size, info.st_mtime_ns)


def _disk_full(fd):
    raise OSError(errno.ENOSPC, "No space left on device")


def _ctrl_c_part_way(source, target, length):
    target.write(source.read(length))  # part of the file is written, then Ctrl-C
    raise KeyboardInterrupt


@pytest.mark.parametrize("module, name, failure, raised", [
    (duplicate_moves.os, "fsync", _disk_full, MoveRefused),
    (duplicate_moves.shutil, "copyfileobj", _ctrl_c_part_way, KeyboardInterrupt),
], ids=["disk full before the copy reaches the disk", "ctrl-c part-way through the copy"])
def test_a_copy_stopped_part_way_leaves_the_original_and_no_partial_copy(one_photo, monkeypatch, module, name, failure, raised):
    root, aside, move = one_photo
    original = (root / move.path).read_bytes()
    _cross_filesystem(monkeypatch)
    monkeypatch.setattr(module, name, failure)
    with pytest.raises(raised):
        move_photo(move, root, aside)
    assert (root / move.path).read_bytes() == original
    assert list((aside / "a").iterdir()) == []


def test_the_copy_path_moves_whole_and_removes_the_original(one_photo, monkeypatch):
    root, aside, move = one_photo
    original = (root / move.path).read_bytes()
    _cross_filesystem(monkeypatch)
    assert move_photo(move, root, aside) == ""
    assert (aside / move.path).read_bytes() == original and not (root / move.path).exists()
    assert [p.name for p in (aside / "a").iterdir()] == ["b.jpg"]


def test_a_path_out_of_the_photo_folder_is_never_moved(tmp_path):
    with pytest.raises(MoveRefused, match="out of the photo folder"):
        move_photo(Move("../outside.jpg", 1, 1), tmp_path / "photos", tmp_path / "aside")


@pytest.mark.parametrize("args, status, message", [
    (["{missing}"], 1, "index file not found"),
    (["{garbage}"], 1, "not a Lookalike index"),
    (["{index}", "--threshold", "2"], 2, "must be a number from 0.5 to 1.0"),
    (["{index}", "--threshold", "x"], 2, "must be a number from 0.5 to 1.0"),
    (["{index}", "--format", "xml"], 2, "invalid choice"),
    (["{index}", "--dry-run"], 2, "--dry-run needs --move-to DIR"),
    (["{index}", "--move-to", "{photos}/aside"], 1, "is inside the photo folder"),
    (["{index}", "--move-to", "{garbage}"], 1, "is not a folder"),
])
def test_bad_input_gets_one_line_and_a_clean_exit(collection, tmp_path, args, status, message):
    photos, index, _ = collection
    (tmp_path / "garbage").write_bytes(b"not an index at all")
    values = {"missing": tmp_path / "missing.pkl", "garbage": tmp_path / "garbage", "index": index, "photos": photos}
    result = run(*(arg.format(**values) for arg in args))
    assert result.returncode == status
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_link_in_dir_back_into_the_photo_folder_never_moves_a_photo_there(tmp_path):
    """DIR/sub is a link to a folder inside the photos: following it would move the copy back in among them."""
    root, aside = tmp_path / "photos", tmp_path / "aside"
    (root / "sub").mkdir(parents=True)
    (root / "inside").mkdir()
    aside.mkdir()
    (aside / "sub").symlink_to(root / "inside")
    photo = root / "sub" / "copy.jpg"
    photo.write_bytes(b"a duplicate")
    info = photo.stat()
    with pytest.raises(MoveRefused, match="leads back into the photo folder"):
        move_photo(Move("sub/copy.jpg", info.st_size, info.st_mtime_ns), root, aside)
    (aside / "sub").unlink()
    (aside / "sub").symlink_to(root)  # deeper: DIR/sub/a/b would be made inside the photos
    with pytest.raises(MoveRefused, match="leads back into the photo folder"):
        move_photo(Move("sub/copy.jpg", info.st_size, info.st_mtime_ns), root, aside)
    assert photo.read_bytes() == b"a duplicate" and list((root / "inside").iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["inside", "sub"]


FORGED = "x\nmoved kept-safe.jpg"  # its second line reads like a photo moved
FORMULAS = ["=HYPERLINK(\"evil.example\").jpg", "+1+2.jpg", "-2+3.jpg", "@SUM(1).jpg", "\tcmd.jpg"]


@pytest.fixture(scope="module")
def hostile_names(imagenet_dir, tmp_path_factory):
    """One photo and identical copies named like formulas or with a line break: one group, indexed for real."""
    from precompute.build import BuildOptions, build_index

    root = tmp_path_factory.mktemp("hostile-names")
    photos = root / "photos"
    photos.mkdir()
    source = sorted(imagenet_dir.iterdir())[0]
    for name in ["keep.jpg", FORGED, *FORMULAS]:
        shutil.copy2(source, photos / name)
    index = root / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", workers=0))
    return photos, index


def test_csv_cells_that_begin_like_a_formula_are_escaped(hostile_names):
    import csv

    _, index = hostile_names
    listing = run(index, "--threshold", THRESHOLD)
    assert listing.returncode == 0, listing.stderr
    rows = list(csv.DictReader(listing.stdout.splitlines(keepends=True)))
    paths = {row["path"] for row in rows}
    assert len(rows) == 2 + len(FORMULAS)
    assert {"'" + name for name in FORMULAS} <= paths
    assert not any(row[field][:1] in "=+-@\t\r" for row in rows for field in row)
    json_paths = {photo["path"] for group in json.loads(run(index, "--threshold", THRESHOLD, "--format", "json").stdout)["groups"]
                  for photo in group}
    assert set(FORMULAS) <= json_paths  # the JSON listing keeps every name exact


def test_a_name_with_a_line_break_cannot_forge_a_line_of_output(hostile_names, tmp_path):
    photos, index = hostile_names
    root = copy_of(photos, tmp_path)
    for extra in ([], ["--dry-run"]):
        result = run(index, "--threshold", THRESHOLD, "--photo-root", root, "--move-to", tmp_path / "aside", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert not any(line.startswith("moved kept-safe") for line in lines)
        kind = "would move " if extra else "moved "
        assert len([line for line in lines if line.startswith(kind)]) == 1 + len(FORMULAS)
        assert sum(repr(FORGED) in line or repr(str(root / FORGED)) in line for line in lines) == 1
    assert (tmp_path / "aside" / FORGED).is_file()
