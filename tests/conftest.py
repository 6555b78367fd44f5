"""Shared fixtures: the real photo data sets, one index built from them per test session, and the markers they imply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.datasets import HOLIDAYS, IMAGENET_SAMPLES, dataset

# Ray reads these when it is imported: every Ray node and driver of the tests then uses 127.0.0.1
# only (by default Ray finds its address by opening a socket towards a public one) and sends no usage report.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

# Markers that follow from the fixtures a test uses, directly or through another fixture, so that new tests get them:
# needs_data for the fixtures that hand out ../shared/datasets (skipped without the data, failed in CI without it:
# tests.support.datasets), slow for an index built over a whole data set.
MARKED_BY_FIXTURE = {
    "needs_data": frozenset({"holidays_dir", "imagenet_dir"}),
    "slow": frozenset({"holidays_index", "near_duplicate_index"}),
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in MARKED_BY_FIXTURE.items():
            if fixtures & used:
                item.add_marker(marker)


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
    """A five-photo index built with the real pipeline (tests.support.tiny_index); tests must not change it."""
    from tests.support.tiny_index import build_tiny_index

    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory):
    """A local HTTP server standing in for S3: yields (folder it serves, base URL)."""
    from tests.support.index_archives import serving

    folder = tmp_path_factory.mktemp("served")
    with serving(folder) as base_url:
        yield folder, base_url


NEAR_DUPLICATE_ORIGINALS = 240  # the first imagenet-samples photos, in name order
NEAR_DUPLICATE_COPIES = 48  # seeded edited copies of them, six of each kind of edit


@pytest.fixture(scope="session")
def near_duplicate_index(imagenet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(index, {copy name: (original name, edit)}): imagenet-samples photos and edited copies, as the evaluation makes them.

    Photos are `originals/NAME` (links to the data set) and `copies/NAME`; tests must not change them.
    """
    from precompute.build import BuildOptions, build_index
    from tools.evaluate.near_duplicates import prepare_near_duplicates

    work = tmp_path_factory.mktemp("near-duplicates")
    subset = work / "subset"
    subset.mkdir()
    for source in sorted(imagenet_dir.iterdir())[:NEAR_DUPLICATE_ORIGINALS]:
        (subset / source.name).symlink_to(source)
    photos, made = prepare_near_duplicates(subset, work, NEAR_DUPLICATE_COPIES)
    index = work / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0"))
    return index, made
