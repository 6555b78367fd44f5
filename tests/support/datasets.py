"""Where the real photo data sets live (../shared/datasets beside the checkout), and what a test does without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
HOLIDAYS = DATASETS / "holidays-dev"
IMAGENET_SAMPLES = DATASETS / "imagenet-samples"


def in_ci() -> bool:
    """True where `CI` is set to anything but empty, 0 or false, as CI services do (`CI=true`)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def dataset(path: Path) -> Path:
    """The data set at `path`. Without it a test skips with the reason, but fails in CI: a CI without the data must not be green."""
    if not path.is_dir():
        reason = f"data set not found at {path} (see ../shared/datasets/README.md)"
        if in_ci():
            pytest.fail(f"{reason}; CI={os.environ['CI']} requires the data sets", pytrace=False)
        pytest.skip(reason)
    return path
