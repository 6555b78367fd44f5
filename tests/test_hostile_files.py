"""Hostile and awkward photo files: each bad one is skipped with its reason, the rest are indexed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import create_app
from app.catalog import display_name
from core.index_file import read_index
from precompute.build import BuildOptions, build_index
from precompute.cli import EXIT_INCOMPLETE
from precompute.decoders import decode_photo
from tests.support.hostile_photos import AWKWARD, BAD, NON_UTF8_NAME, jpeg_bytes, photo_like, write_corpus

ROOT = Path(__file__).resolve().parent.parent
NON_UTF8 = os.fsdecode(NON_UTF8_NAME)  # how Python spells the name: the bad byte as a lone surrogate


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """One real `python -m precompute` run over the corpus, with a decoding worker process."""
    folder = tmp_path_factory.mktemp("hostile")
    write_corpus(folder)
    index_path = folder.parent / f"{folder.name}-index" / "index.pkl"
    command = [sys.executable, "-m", "precompute", str(folder), "--out", str(index_path)]
    command += ["--model", "efficientnet-lite0", "--workers", "1", "--batch-size", "4"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300)
    return result, folder, index_path


@pytest.mark.slow
def test_bad_files_are_skipped_with_their_reason_and_the_rest_indexed(corpus_run):
    result, _, index_path = corpus_run
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert "Traceback" not in stderr
    assert result.returncode == EXIT_INCOMPLETE, stderr
    assert f"Indexed {len(AWKWARD) + 1} photos" in stdout
    assert f"Skipped {len(BAD)}:" in stdout
    for name, reason in BAD.items():
        assert any(line.strip().startswith(f"{name}:") and reason in line for line in stdout.splitlines()), name
    index = read_index(index_path)
    assert sorted(p["path"] for p in index.photos) == sorted((*AWKWARD, NON_UTF8))
    assert {s["path"]: s["reason"] for s in index.skipped}.keys() == BAD.keys()


@pytest.mark.slow
def test_non_utf8_and_emoji_names_reach_the_web_page(corpus_run):
    _, folder, index_path = corpus_run
    client = create_app(index_path).test_client()
    gallery = client.get("/?per_page=200").get_data(as_text=True)
    assert display_name(NON_UTF8) == "caf\ufffd-latin1.jpg"
    assert "caf\ufffd-latin1.jpg" in gallery and "café-🌅.jpg" in gallery
    index = read_index(index_path)
    for photo in index.photos:
        page = client.get(f"/photos/{photo['id']}")
        assert page.status_code == 200 and display_name(photo["path"]) in page.get_data(as_text=True)
        original = client.get(f"/photos/{photo['id']}/original")
        assert original.status_code == 200
        original.close()
    latin1 = next(p for p in index.photos if p["path"] == NON_UTF8)
    original = client.get(f"/photos/{latin1['id']}/original")
    assert original.data == (folder / NON_UTF8).read_bytes()


# The upright image an EXIF orientation tag stands for, stored the way a camera would store it.
STORED_AS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),  # displayed after turning 90° clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def asymmetric_image(width: int = 1200, height: int = 800) -> np.ndarray:
    """Four differently coloured quadrants plus a bar at the top: every flip and turn looks different."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = (230, 40, 40)
    pixels[: height // 2, width // 2 :] = (40, 200, 40)
    pixels[height // 2 :, : width // 2] = (40, 40, 220)
    pixels[height // 2 :, width // 2 :] = (240, 240, 60)
    pixels[: height // 10, : width // 4] = (255, 255, 255)
    return pixels


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_upright(orientation):
    upright = asymmetric_image()
    stored = Image.fromarray(np.ascontiguousarray(STORED_AS[orientation](upright)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_photo(jpeg_bytes(stored, exif=exif.tobytes()), min_shorter=256, min_longer=320)
    assert (decoded.width, decoded.height) == (1200, 800)
    assert decoded.image.width < 1200, "the JPEG should have been decoded at reduced size"
    expected = np.asarray(Image.fromarray(upright).resize(decoded.image.size, Image.Resampling.BILINEAR), np.float32)
    difference = np.abs(np.asarray(decoded.image, np.float32) - expected).mean()
    assert difference < 12, f"orientation {orientation}: mean difference {difference:.1f}"


def test_awkward_modes_decode_to_faithful_rgb():
    original = photo_like(seed=3)
    buffer = io.BytesIO()
    original.convert("CMYK").save(buffer, "JPEG", quality=95)
    cmyk = decode_photo(buffer.getvalue(), 256, 320).image
    assert np.abs(np.asarray(cmyk, np.float32) - np.asarray(original, np.float32)).mean() < 12

    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16)).save(buffer, "PNG")
    grey = np.asarray(decode_photo(buffer.getvalue(), 256, 320).image)
    assert grey.min() < 5 and grey.max() > 250, "16-bit values must be scaled, not clipped"

    buffer = io.BytesIO()
    palette = Image.new("P", (64, 64), 1)
    palette.putpalette([0, 0, 0] + [10, 10, 10] * 255)
    palette.paste(0, (0, 0, 32, 64))
    palette.save(buffer, "PNG", transparency=0)
    composited = np.asarray(decode_photo(buffer.getvalue(), 256, 320).image)
    assert (composited[:, :32] == 255).all(), "transparent pixels go on white"
    assert (composited[:, 32:] == 10).all()


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root (as CI does): file permissions do not stop root reading")
def test_unreadable_file_is_skipped_with_its_reason(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_like().save(folder / "fine.jpg")
    photo_like(seed=2).save(folder / "secret.jpg")
    (folder / "secret.jpg").chmod(0)
    report = build_index(folder, tmp_path / "index.pkl", BuildOptions(model="efficientnet-lite0", workers=0))
    assert report.indexed == 1
    assert [(s.relpath, s.reason) for s in report.skipped] == [("secret.jpg", "cannot read file: Permission denied")]
