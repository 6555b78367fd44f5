"""Pooling, multi-scale and query-expansion options compute what they say, for resnet18 too.

Weights are built in the test (see test_resnet18.py for why).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from precompute.embed import embed_scales
from precompute.models import load_model
from precompute.resize import to_model_input
from precompute.query_expansion import expand
from tests.resnet18_reference import layer_output, save_random_weights


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
