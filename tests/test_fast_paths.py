"""The fast paths give the same results as the simple reference they replace.

Speed itself is measured in benchmarks/, never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.models import resnet18

from core.index_file import THUMBNAIL_SIZES as SIZES
from precompute.embed import embed_photos
from precompute.models import LoadedModel, load_efficientnet_lite0, load_model, load_resnet18
from precompute.neighbours.exact import top_k_neighbours
from precompute.resize import model_crop, to_model_input
from precompute.runtime import OnnxRunner, TorchRunner, make_runner, onnx_cache_dir
from precompute.scan import scan_photos
from precompute.thumbnails import write_thumbnails
from tests.support.eager_reference import embed_scales

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
SAME_DIRECTION = 1 - 1e-4  # cosine between a fast embedding and the reference


@pytest.fixture(scope="module")
def efficientnet() -> LoadedModel:
    return load_efficientnet_lite0(None)


@pytest.fixture(scope="module")
def random_resnet18(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """ResNet18 with random weights (pretrained ones can't be downloaded here): enough to compare runners."""
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pt"
    torch.manual_seed(0)
    torch.save(resnet18(weights=None).state_dict(), path)
    return load_resnet18(path)


@pytest.fixture(scope="module")
def sample_photos(imagenet_dir: Path) -> list:
    """Nine real photos: with batches of 4 the last batch is a partial one."""
    return scan_photos(imagenet_dir).photos[::111][:9]


def reference_embeddings(model: LoadedModel, paths: list[Path]) -> np.ndarray:
    """The plain way: full decode, float preprocessing, eager PyTorch, one photo at a time."""
    rows = []
    with torch.no_grad():
        for path in paths:
            image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            pixels = torch.from_numpy(to_model_input(image, model.preprocessing)).unsqueeze(0)
            rows.append(torch.nn.functional.normalize(model.features(pixels), dim=1).numpy())
    return np.concatenate(rows)


def crops_of(model: LoadedModel, paths: list[Path]) -> np.ndarray:
    return np.stack([model_crop(np.asarray(Image.open(path).convert("RGB")), model.preprocessing) for path in paths])


def assert_same_directions(fast: np.ndarray, reference: np.ndarray) -> None:
    assert fast.shape == reference.shape and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(fast * reference, axis=1)
    assert cosines.min() >= SAME_DIRECTION, f"cosines to the reference: {cosines}"


@pytest.mark.parametrize("which", ["efficientnet", "random_resnet18"])
@pytest.mark.parametrize("runner_type", [OnnxRunner, TorchRunner])
def test_runner_matches_eager_reference(which, runner_type, sample_photos, request):
    model = request.getfixturevalue(which)
    paths = [photo.path for photo in sample_photos]
    runner = runner_type(model) if runner_type is OnnxRunner else runner_type(model, CPU)
    assert_same_directions(runner(crops_of(model, paths)), reference_embeddings(model, paths))


def test_cpu_default_is_onnxruntime(efficientnet):
    assert make_runner(efficientnet, CPU).name == "onnxruntime"
    assert make_runner(efficientnet, CPU, backend="torch").name == "torch"


def test_pipeline_matches_reference_in_photo_order(efficientnet, sample_photos, tmp_path):
    """Worker processes, uint8 crops, in-graph normalisation and partial batches change nothing."""
    embedded = embed_photos(sample_photos, efficientnet, tmp_path, batch_size=4, workers=2, device=CPU)
    assert [info["path"] for info in embedded.infos] == [photo.relpath for photo in sample_photos]
    assert_same_directions(embedded.embeddings, reference_embeddings(efficientnet, [p.path for p in sample_photos]))


def test_multi_scale_gem_pipeline_matches_pytorch(sample_photos, tmp_path):
    """One exported graph serves every input size, and GeM pooling survives the export."""
    model = load_model("efficientnet-lite0", pooling="gem", scales=(224, 288))
    embedded = embed_photos(sample_photos[:5], model, tmp_path, batch_size=2, workers=1, device=CPU)
    images = [ImageOps.exif_transpose(Image.open(photo.path)).convert("RGB") for photo in sample_photos[:5]]
    scales = [torch.from_numpy(np.stack([to_model_input(image, spec) for image in images])) for spec in model.input_specs]
    assert_same_directions(embedded.embeddings, embed_scales(model.features, scales, CPU))


def test_damaged_cached_graph_is_exported_again(efficientnet, sample_photos, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    paths = [photo.path for photo in sample_photos[:2]]
    OnnxRunner(efficientnet)  # make sure the graph is cached
    (cached,) = onnx_cache_dir().glob("efficientnet-lite0-avg-*.onnx")
    cached.write_bytes(b"not an onnx graph")
    runner = OnnxRunner(efficientnet)
    assert_same_directions(runner(crops_of(efficientnet, paths)), reference_embeddings(efficientnet, paths))
    assert cached.stat().st_size > 1_000_000


def test_thumbnails_made_from_each_other_keep_their_sizes(tmp_path):
    """Each size is made from the next larger one; the results still fit their boxes at the photo's shape."""
    photo = Image.effect_mandelbrot((4000, 3000), (-2, -1.5, 1, 1.5), 50).convert("RGB")
    written = write_thumbnails(np.asarray(photo), tmp_path, "ab" * 20)
    assert list(written) == list(SIZES)
    for kind, long_side in SIZES.items():
        entry = written[kind]
        with Image.open(tmp_path / entry["file"]) as image:
            assert image.size == (entry["width"], entry["height"]) == (long_side, long_side * 3 // 4)


def brute_force_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole N × N matrix in float64, each row fully sorted by (score descending, row)."""
    similarity = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    np.fill_diagonal(similarity, -np.inf)
    columns = np.broadcast_to(np.arange(len(vectors)), similarity.shape)
    order = np.lexsort((columns, -similarity), axis=1)[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def random_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("block", [None, 7, 97, 300, 5000])  # 7: fewer than k in every tile
def test_tiled_neighbours_equal_brute_force(block):
    vectors = random_unit_vectors(1200, 64, seed=1)
    expected, expected_scores = brute_force_neighbours(vectors, 10)
    neighbours, scores = top_k_neighbours(vectors, 10, block=block)
    assert neighbours.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_array_equal(neighbours, expected)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


def test_equal_scores_are_listed_in_row_order():
    """Coordinates on a coarse binary grid make every dot product exact, so ties are real ties."""
    grid = np.random.default_rng(2).integers(-2, 3, size=(60, 8)).astype(np.float32) / 4
    vectors = np.concatenate([grid, grid[:20], grid[:5]])  # duplicates tie with their originals
    expected, expected_scores = brute_force_neighbours(vectors, 6)
    neighbours, scores = top_k_neighbours(vectors, 6, block=9)
    np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))
    tied = np.isclose(expected_scores[:, :-1], expected_scores[:, 1:])
    assert tied.any(), "the data should contain ties"
    # Within the k, ties are in row order; at the k-th place a tie may admit either row.
    within = expected_scores > expected_scores[:, -1:]
    np.testing.assert_array_equal(np.where(within, neighbours, -1), np.where(within, expected, -1))


@pytest.mark.parametrize("script_name", ["", "/lookalike"])
def test_hand_built_urls_equal_url_for(synthetic_index, script_name):
    from flask import url_for

    from app import create_app
    from app.links import fixed_url, gallery_url, original_url, photo_url, thumbnail_url

    app = create_app(synthetic_index)
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": script_name}):
        for photo in app.extensions["lookalike.catalog"].photos[:3]:
            assert photo_url(photo) == url_for("pages.photo", photo_id=photo["id"])
            assert photo_url(photo, {"per_page": 96}) == url_for("pages.photo", photo_id=photo["id"], per_page=96)
            assert original_url(photo) == url_for("pages.original", photo_id=photo["id"])
            for kind in SIZES:
                assert thumbnail_url(photo, kind) == url_for(
                    "pages.thumbnail", photo_id=photo["id"], kind=kind, v=photo["sha1"][:12]
                )
        assert gallery_url() == url_for("pages.gallery")
        assert gallery_url(3) == url_for("pages.gallery", page=3)
        assert gallery_url(3, {"per_page": 96}) == url_for("pages.gallery", page=3, per_page=96)
        for endpoint, values in [("pages.gallery", {}), ("search.search", {}), ("static", {"filename": "style.css"})]:
            assert fixed_url(endpoint, **values) == fixed_url(endpoint, **values) == url_for(endpoint, **values)
        assert "?v=" in fixed_url("static", filename="style.css")  # the cache-busting version is kept
