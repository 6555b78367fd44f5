"""R-MAC and R-GeM pooling: the paper's regions, the resnet18 path, and the exported ONNX graph.

ResNet18 weights are built in the test (see test_resnet18.py for why).
"""

import numpy as np
import pytest
import torch

from precompute.models import RegionalPool, load_model
from precompute.runtime import FromCrops, onnx_model
from tests.support.resnet18_reference import layer_output, save_random_weights

pytestmark = pytest.mark.slow

# Tolias, Sicre & Jégou's rmac_regions (L = 3, 40 % overlap) worked out by hand:
# (top, left, side). Level 1 is the whole map; level 2 has side floor(2·9/3) = 6
# at steps of (9 − 6) / 1 = 3; level 3 has side floor(2·9/4) = 4 at
# floor(1 + k·2.5) − 1 = 0, 2, 5.
REGIONS_9X9 = [(0, 0, 9)]
REGIONS_9X9 += [(top, left, 6) for top in (0, 3) for left in (0, 3)]
REGIONS_9X9 += [(top, left, 4) for top in (0, 2, 5) for left in (0, 2, 5)]
# 7 × 7 (a 224 px crop): sides 7, floor(14/3) = 4 at 0, 3 and floor(14/4) = 3 at floor(0 + k·2) = 0, 2, 4.
REGIONS_7X7 = [(0, 0, 7)]
REGIONS_7X7 += [(top, left, 4) for top in (0, 3) for left in (0, 3)]
REGIONS_7X7 += [(top, left, 3) for top in (0, 2, 4) for left in (0, 2, 4)]


def regional_reference(fmap: torch.Tensor, regions: list, p: float | None) -> torch.Tensor:
    """Each region pooled (max, or GeM with p), unit-normalised; the sum over regions."""
    total = torch.zeros(fmap.shape[:2], dtype=torch.float64)
    for top, left, side in regions:
        region = fmap[:, :, top : top + side, left : left + side].double()
        if p is None:
            pooled = region.amax(dim=(2, 3))
        else:
            pooled = region.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1 / p)
        total += pooled / pooled.norm(dim=1, keepdim=True)
    return total.float()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("weights") / "resnet18.pth", seed=2)


@pytest.mark.parametrize("p", [None, 3.0], ids=["rmac", "rgem"])
@pytest.mark.parametrize("size, regions", [(9, REGIONS_9X9), (7, REGIONS_7X7)])
def test_regional_pooling_sums_the_papers_regions(p, size, regions):
    fmap = torch.rand(2, 5, size, size, generator=torch.Generator().manual_seed(size)) * 6
    torch.testing.assert_close(RegionalPool(p)(fmap), regional_reference(fmap, regions, p))


def test_a_one_cell_map_gives_its_own_direction():
    fmap = torch.tensor([3.0, 4.0, 0.0]).view(1, 3, 1, 1)
    for pool in (RegionalPool(), RegionalPool(3.0)):
        out = pool(fmap)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(torch.nn.functional.normalize(out, dim=1), torch.tensor([[0.6, 0.8, 0.0]]))


@pytest.mark.parametrize("pooling, p", [("rmac", None), ("rgem", 3.0)])
def test_resnet18_regional_pooling_of_layer4(weights_file, pooling, p):
    model = load_model("resnet18", weights_file, pooling=pooling)
    batch = torch.randn(2, 3, 288, 288, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = model.features(batch)
    fmap = layer_output(weights_file, batch, "layer4")
    assert fmap.shape[-2:] == (9, 9)
    torch.testing.assert_close(ours, regional_reference(fmap, REGIONS_9X9, p))
    assert model.describe()["pooling"] == pooling


@pytest.mark.parametrize("pooling", ["rmac", "rgem"])
@pytest.mark.parametrize("name", ["resnet18", "efficientnet-lite0"])
def test_exported_graph_equals_pytorch_at_other_input_sizes(name, pooling, weights_file, tmp_path, monkeypatch):
    """The graph is traced at 224 px; the regions must follow the input size, not the trace's."""
    import onnxruntime

    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    model = load_model(name, weights_file if name == "resnet18" else None, pooling=pooling)
    session = onnxruntime.InferenceSession(onnx_model(model), providers=["CPUExecutionProvider"])
    features = FromCrops(model.features, model.preprocessing).eval()
    rng = np.random.default_rng(0)
    for size in (224, 288, 320, 352):
        crops = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
        (exported,) = session.run(None, {"crops": crops})
        with torch.inference_mode():
            expected = features(torch.from_numpy(crops)).numpy()
        np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-5, err_msg=f"{size} px")
