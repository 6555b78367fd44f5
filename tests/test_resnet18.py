"""The resnet18 path, tested with weights built here: real ImageNet weights can't be downloaded on CI.

Random weights prove the wiring (layer, shape, preprocessing, weight sources),
not the quality; quality is tested with efficientnet-lite0's real weights.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights
from torchvision.transforms.functional import pil_to_tensor

from core.index_file import read_index
from precompute.models import ModelUnavailable, load_model
from precompute.resize import to_model_input
from tests.support.resnet18_reference import layer_output, save_random_weights

pytestmark = pytest.mark.slow

PHOTOS = [Path(skimage.data.__file__).parent / name for name in ("astronaut.png", "chelsea.png", "coffee.png")]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    return save_random_weights(tmp_path_factory.mktemp("weights") / "resnet18-test.pth", seed=0)


def reference_features(weights_file: Path, batch: torch.Tensor) -> torch.Tensor:
    """The average-pool output of torchvision's own ResNet18."""
    return layer_output(weights_file, batch, "avgpool").flatten(1)


def test_features_are_the_512_d_average_pool_before_fc(weights_file):
    loaded = load_model("resnet18", weights_file)
    batch = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        ours = loaded.features(batch)
    assert loaded.dim == 512 and ours.shape == (2, 512)
    torch.testing.assert_close(ours, reference_features(weights_file, batch))


def test_preprocessing_matches_torchvision_imagenet_transforms(weights_file):
    loaded = load_model("resnet18", weights_file)
    spec = loaded.preprocessing
    assert (spec.resize, spec.crop, spec.interpolation) == (256, 224, "bilinear")
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)
    reference = ResNet18_Weights.IMAGENET1K_V1.transforms()
    # Our resize is torch's vectorised uint8 kernel; Pillow's (and torchvision's
    # tensor path) round a few pixels the other way: one 8-bit level, no more.
    one_level = 1.001 / 255 / min(spec.std)
    for path in PHOTOS:
        image = Image.open(path).convert("RGB")
        ours = to_model_input(image, spec)
        for theirs in (reference(image).numpy(), reference(pil_to_tensor(image)).numpy()):
            assert ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=one_level)
            assert np.mean(np.abs(ours - theirs)) < 0.25 * one_level  # rounding, not a shifted crop


def test_cli_with_weights_file_embeds_like_torchvision(weights_file, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in PHOTOS:
        shutil.copy(path, photos / path.name)
    out = tmp_path / "index.pkl"
    result = subprocess.run(
        [sys.executable, "-m", "precompute", str(photos), "--out", str(out), "--model", "resnet18",
         "--weights", str(weights_file), "--pooling", "avg", "--scales", "224", "--query-expansion", "0", "--workers", "0"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    index = read_index(out)
    assert index.model.name == "resnet18" and index.embeddings.shape == (3, 512)
    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    batch = torch.stack([transform(Image.open(photos / p["path"]).convert("RGB")) for p in index.photos])
    expected = torch.nn.functional.normalize(reference_features(weights_file, batch), dim=1).numpy()
    cosines = (index.embeddings * expected).sum(axis=1)
    assert cosines.min() > 0.9999


def test_weights_are_taken_from_torchvisions_cache(weights_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name
    cached.parent.mkdir(parents=True)
    shutil.copy(weights_file, cached)
    loaded = load_model("auto")
    assert loaded.name == "resnet18"
    assert "auto chose resnet18" in loaded.note
    batch = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.features(batch), reference_features(weights_file, batch))


def test_offline_without_weights_says_how_to_fix_it_and_auto_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # any download fails at once, as offline
    with pytest.raises(ModelUnavailable, match="--weights FILE"):
        load_model("resnet18")
    fallback = load_model("auto")
    assert fallback.name == "efficientnet-lite0"
    assert "resnet18 is unavailable" in fallback.note


def test_a_file_that_is_not_resnet18_weights_is_refused(tmp_path):
    bogus = tmp_path / "bogus.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bogus)
    with pytest.raises(ModelUnavailable, match="does not hold ResNet18 weights"):
        load_model("resnet18", bogus)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="cannot read weights file"):
        load_model("resnet18", tmp_path / "garbage.pth")
