"""The verification module with real OpenCV on real photos, and the evidence side file it reads from."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from precompute import verification
from precompute.evidence import MAGIC, EvidenceFileError, extract_evidence, read_evidence, write_evidence


def _photo(holidays_dir: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(holidays_dir / name).convert("RGB"))


def test_mirrored_descriptors_are_those_of_the_flipped_photo(holidays_dir):
    photo = _photo(holidays_dir, "100000.jpg")
    original = verification.extract_features(photo)
    flipped = verification.extract_features(np.ascontiguousarray(photo[:, ::-1]))
    plain = verification.verify(original, [flipped])[0]
    mirrored = verification.verify(original, [flipped], mirrored=True)[0]
    assert plain.inliers < mirrored.inliers / 10  # only symmetric structures match without mirroring
    assert mirrored.verified and mirrored.mirrored
    assert mirrored.inliers > 0.8 * len(original)
    assert np.linalg.det(mirrored.transform[:, :2]) < 0  # the transform includes the reflection
    assert mirrored.transform[0, 2] == pytest.approx(original.size[0], abs=3)  # x -> width - x, in feature pixels


def test_a_rotated_cropped_reexposed_shot_verifies_and_another_scene_does_not(holidays_dir):
    photo = Image.open(holidays_dir / "100000.jpg").convert("RGB")
    width, height = photo.size
    edited = photo.crop((width // 8, height // 10, width - width // 10, height - height // 8))
    edited = ImageEnhance.Brightness(edited.rotate(90, expand=True)).enhance(1.6)
    query = verification.extract_features(np.asarray(photo))
    same = verification.extract_features(np.asarray(edited))
    other = verification.extract_features(_photo(holidays_dir, "100100.jpg"))
    same_match, other_match = verification.verify(query, [same, other])
    assert same_match.verified
    assert abs(abs(same_match.rotation_degrees) - 90) < 5
    shrunk = [min(1.0, verification.FEATURE_SIDE / max(image.size)) for image in (photo, edited)]
    assert same_match.scale == pytest.approx(shrunk[1] / shrunk[0], rel=0.1)  # in feature pixels: same size in the photo
    assert not other_match.verified


def test_a_flat_dark_copy_is_detected_again_at_a_lower_contrast_and_verifies(holidays_dir):
    """At OpenCV's default contrast threshold this copy has no keypoints at all; its textured original keeps that one."""
    photo = Image.open(holidays_dir / "100000.jpg").convert("RGB")
    flat = ImageEnhance.Brightness(ImageEnhance.Contrast(photo).enhance(0.15)).enhance(0.5)
    original, copy = verification.extract_features(np.asarray(photo)), verification.extract_features(np.asarray(flat))
    default = cv2.SIFT_create(nfeatures=verification.MAX_FEATURES, contrastThreshold=verification.CONTRAST_THRESHOLD)
    for image, features, again in ((photo, original, False), (flat, copy, True)):
        found = len(default.detect(verification.feature_image(np.asarray(image)), None))
        assert (found < verification.FLAT_KEYPOINTS) == again
        assert (len(features) > found) == again
    assert verification.verify(original, [copy])[0].verified


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("mirror", [False, True])
def test_the_copy_transform_fits_every_quarter_turn_mirrored_or_not(turns, mirror):
    rng = np.random.default_rng(turns)
    source = rng.uniform(0, 256, (60, 2))
    quarter = np.linalg.matrix_power(np.array([[0.0, -1.0], [1.0, 0.0]]), turns)
    linear = 0.7 * quarter @ (np.diag([-1.0, 1.0]) if mirror else np.eye(2))
    target = source @ linear.T + [30.0, -12.0]
    estimate = linear + rng.normal(0, 0.02, (2, 2))  # as RANSAC's affine map comes, a little off
    transform, errors = verification.copy_transform(source, target, estimate)
    assert np.allclose(transform, np.hstack([linear, [[30.0], [-12.0]]]))
    assert errors.max() < 1e-9


def test_a_camera_turned_by_a_degree_fits_an_affine_map_and_no_copy_transform():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 256, (200, 2))
    angle = np.radians(1.0)
    linear = 1.05 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    _, errors = verification.copy_transform(source, source @ linear.T + [4.0, 2.0], linear)
    assert np.median(errors) > 3 * verification.SAME_MAX_ERROR


@pytest.mark.parametrize("pair", [("111001", "111002"), ("112403", "112404"), ("104001", "104002"), ("110900", "110901")])
def test_two_shots_that_one_affine_map_fits_closely_are_not_the_same_picture(holidays_dir, pair):
    """Real re-shots of one scene (a step aside, a fish moved): hundreds of inliers, thumbnails alike at 64 px."""
    photos = [_photo(holidays_dir, f"{name}.jpg") for name in pair]
    features = [verification.extract_features(photo) for photo in photos]
    assert verification.verify(features[0], features[1:])[0].inliers >= 3 * verification.SAME_MIN_INLIERS
    sameness = verification.picture_sameness(features[0], verification.gray_thumbnail(photos[0]),
                                             features[1], verification.gray_thumbnail(photos[1]))
    assert sameness.error > verification.SAME_MAX_ERROR and not sameness.same(), sameness


def test_verify_many_candidates_in_chunks_keeps_their_order(holidays_dir):
    names = sorted(p.name for p in holidays_dir.glob("*.jpg"))[:40]
    features = [verification.extract_features(_photo(holidays_dir, name)) for name in names]
    query = features[0]
    matches = verification.verify(query, features)
    assert len(matches) == len(features)
    assert matches[0].inliers == max(m.inliers for m in matches)  # itself
    one_by_one = [verification.verify(query, [f])[0].tentative for f in features]
    assert [m.tentative for m in matches] == one_by_one


def test_features_are_capped_and_compact(imagenet_dir):
    photo = np.asarray(Image.open(next(iter(sorted(imagenet_dir.glob("*.JPEG"))))).convert("RGB"))
    big = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * 3, photo.shape[0] * 3)))
    features = verification.extract_features(big)
    assert len(features) <= verification.MAX_FEATURES
    assert max(features.size) == verification.FEATURE_SIDE
    assert features.descriptors.dtype == np.uint8 and features.points.dtype == np.float16
    assert max(verification.gray_thumbnail(big).shape) == verification.GRAY_SIDE


def test_a_blank_or_tiny_photo_has_no_features_and_matches_nothing():
    blank = verification.extract_features(np.full((40, 30, 3), 128, np.uint8))
    tiny = verification.extract_features(np.zeros((1, 1, 3), np.uint8))
    assert len(blank) == 0 and len(tiny) == 0
    assert verification.verify(blank, [tiny, blank]) == [verification.NO_MATCH] * 2


def _side_file(holidays_dir: Path, folder: Path) -> tuple[Path, list]:
    photos = [extract_evidence(_photo(holidays_dir, name), f"{n:040x}", (325, 243))
              for n, name in enumerate(["100000.jpg", "100001.jpg", "100100.jpg"])]
    path = folder / "index.evidence"
    write_evidence(path, photos)
    return path, photos


def test_side_file_round_trip(holidays_dir, tmp_path):
    path, photos = _side_file(holidays_dir, tmp_path)
    read = read_evidence(path)
    assert read.photos == 3
    for row, photo in enumerate(photos):
        assert read.sha1(row) == photo.sha1
        assert np.array_equal(read.features(row).descriptors, photo.features.descriptors)
        assert np.array_equal(read.features(row).points, photo.features.points)
        assert read.features(row).size == photo.features.size
        assert np.array_equal(read.gray(row), photo.gray)
        assert read.image_size(row) == (325, 243)
    assert read.rows_by_sha1() == {photo.sha1: row for row, photo in enumerate(photos)}


def _array_start(data: bytearray, name: str) -> int:
    length = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "little")
    header = json.loads(bytes(data[len(MAGIC) + 8:len(MAGIC) + 8 + length]))
    page = mmap.ALLOCATIONGRANULARITY
    return -(-(len(MAGIC) + 8 + length) // page) * page + header["arrays"][name]["offset"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "offsets", "empty"])
def test_a_damaged_side_file_is_refused_with_a_reason(holidays_dir, tmp_path, damage):
    path, _ = _side_file(holidays_dir, tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data[:64] = b"\x00" * 64
    elif damage == "offsets":
        data[_array_start(data, "feature_offsets") + 8] ^= 0xFF  # photo 1's first keypoint, under the checksum
    else:
        data = b""
    path.write_bytes(bytes(data))
    with pytest.raises(EvidenceFileError, match="index.evidence"):
        read_evidence(path)
