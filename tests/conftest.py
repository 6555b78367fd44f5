"""Shared fixtures: the real photo data sets, and one index built from them per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HOLIDAYS = DATASETS / "holidays-dev"
IMAGENET_SAMPLES = DATASETS / "imagenet-samples"


def dataset(path: Path) -> Path:
    """The data set at `path`, or skip the test with the reason."""
    if not path.is_dir():
        pytest.skip(f"data set not found at {path} (see ../shared/datasets/README.md)")
    return path


@pytest.fixture(scope="session")
def holidays_dir() -> Path:
    return dataset(HOLIDAYS)


@pytest.fixture(scope="session")
def imagenet_dir() -> Path:
    return dataset(IMAGENET_SAMPLES)


@pytest.fixture(scope="session")
def synthetic_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-photo index of random embeddings, for the web app's tests (benchmarks.synthetic_index)."""
    from benchmarks.synthetic_index import write_synthetic_index

    return write_synthetic_index(tmp_path_factory.mktemp("web") / "index.pkl", 120)


@pytest.fixture(scope="session")
def holidays_index(holidays_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index over holidays-dev, built once with efficientnet-lite0 (the offline model)."""
    from precompute.build import BuildOptions, build_index

    out = tmp_path_factory.mktemp("holidays") / "index.pkl"
    build_index(holidays_dir, out, BuildOptions(model="efficientnet-lite0", k=10))
    return out


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A five-photo index built with the real pipeline (tests.tiny_index); tests must not change it."""
    from tests.tiny_index import build_tiny_index

    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory):
    """A local HTTP server standing in for S3: yields (folder it serves, base URL)."""
    from tests.index_archives import serving

    folder = tmp_path_factory.mktemp("served")
    with serving(folder) as base_url:
        yield folder, base_url
