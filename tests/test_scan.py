from pathlib import Path

import pytest

from precompute.scan import scan_photos


def touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_scan_finds_images_recursively_sorted_and_relative(tmp_path):
    for name in ["b.jpg", "a/c.PNG", "a/deep/d.webp", "e.gif", "f.bmp", "g.tiff", "h.tif", "i.jpeg"]:
        touch(tmp_path / name)
    result = scan_photos(tmp_path)
    assert [p.relpath for p in result.photos] == sorted(
        ["b.jpg", "a/c.PNG", "a/deep/d.webp", "e.gif", "f.bmp", "g.tiff", "h.tif", "i.jpeg"]
    )
    assert all(p.path == tmp_path / p.relpath for p in result.photos)
    assert all(p.size == 1 and p.mtime_ns > 0 for p in result.photos)


def test_scan_skips_hidden_files_and_folders_and_ignores_non_images(tmp_path):
    touch(tmp_path / "keep.jpg")
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / ".cache" / "inside.jpg")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "archive.zip")
    result = scan_photos(tmp_path)
    assert [p.relpath for p in result.photos] == ["keep.jpg"]
    assert result.ignored == 2


def test_scan_takes_phone_and_camera_formats_and_counts_videos_and_unreadable_images(tmp_path):
    photos = ["a.HEIC", "b.heif", "c.avif", "d.jxl", *(f"raw.{suffix}" for suffix in
              ("dng", "CR2", "cr3", "nef", "arw", "orf", "rw2", "raf", "pef", "srw"))]
    for name in [*photos, "IMG_1.HEIC", "IMG_1.MOV", "trip/IMG_2.jpg", "trip/img_2.mov", "clip.mp4", "x.m4v", "y.avi",
                 "z.3gp", "w.mkv", "v.webm", "poster.psd", "logo.svg", "notes.txt"]:
        touch(tmp_path / name)
    result = scan_photos(tmp_path)
    assert sorted(p.relpath for p in result.photos) == sorted([*photos, "IMG_1.HEIC", "trip/IMG_2.jpg"])
    assert (result.videos, result.live_photo_videos, result.ignored) == (8, 2, 1)
    assert result.unsupported == {".psd": 1, ".svg": 1}


def test_scan_does_not_follow_folder_links(tmp_path):
    touch(tmp_path / "photos" / "a.jpg")
    (tmp_path / "photos" / "loop").symlink_to(tmp_path / "photos", target_is_directory=True)
    result = scan_photos(tmp_path / "photos")
    assert [p.relpath for p in result.photos] == ["a.jpg"]


def test_scan_reports_broken_file_links(tmp_path):
    touch(tmp_path / "a.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    result = scan_photos(tmp_path)
    assert [p.relpath for p in result.photos] == ["a.jpg"]
    assert [s.relpath for s in result.skipped] == ["gone.jpg"]
    assert "cannot read" in result.skipped[0].reason


def test_scan_of_a_missing_folder_says_so(tmp_path):
    with pytest.raises(NotADirectoryError, match="photo folder not found"):
        scan_photos(tmp_path / "nope")


def test_paths_an_index_cannot_keep_are_skipped_with_their_reason(tmp_path):
    """Too many levels or bytes for the index (index_file.MAX_PATH_PARTS, MAX_PATH_BYTES); the rest are kept."""
    from core.index_file import MAX_PATH_BYTES, MAX_PATH_PARTS

    touch(tmp_path / "keep.jpg")
    touch(tmp_path.joinpath(*["d"] * (MAX_PATH_PARTS - 1), "deepest-kept.jpg"))
    touch(tmp_path.joinpath(*["d"] * MAX_PATH_PARTS, "too-deep.jpg"))
    touch(tmp_path.joinpath(*["d"] * (MAX_PATH_PARTS + 5), "far-too-deep.jpg"))
    long_path = "/".join(["n" * 250] * 5) + "/long.jpg"
    touch(tmp_path / long_path)
    result = scan_photos(tmp_path)
    assert [p.relpath for p in result.photos] == ["/".join(["d"] * (MAX_PATH_PARTS - 1) + ["deepest-kept.jpg"]), "keep.jpg"]
    reasons = {s.relpath: s.reason for s in result.skipped}
    assert reasons.pop(long_path) == f"path of {len(long_path):,} bytes; an index keeps paths of at most {MAX_PATH_BYTES}"
    too_deep = "/".join(["d"] * MAX_PATH_PARTS + ["too-deep.jpg"])
    assert reasons.pop(too_deep) == f"path of {MAX_PATH_PARTS + 1} levels; an index keeps paths of at most {MAX_PATH_PARTS}"
    assert reasons == {"/".join(["d"] * (MAX_PATH_PARTS + 1)): (
        f"folder too deep: a photo in it would have over {MAX_PATH_PARTS} levels; not searched")}
