"""Search by photo embeds an upload through the pipeline's own code path: the same bytes give the index's descriptor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.index_file import read_index
from precompute.query import DescriberUnavailable, UnreadablePhoto, load_describer
from tests.support.tiny_index import build_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_index(tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow
def test_a_photos_bytes_give_the_descriptor_the_index_holds(tiny_index: Path):
    index = read_index(tiny_index)
    describe = load_describer(index.model)
    for row, photo in enumerate(index.photos):
        descriptor = describe((Path(index.photo_root) / photo["path"]).read_bytes())
        assert descriptor.dtype == np.float32 and descriptor.shape == (index.model.dim,)
        assert float(descriptor @ index.embeddings[row]) > 1 - 1e-6, photo["path"]


def test_unreadable_bytes_and_unloadable_models_are_reported(tiny_index: Path):
    model = read_index(tiny_index).model
    with pytest.raises(UnreadablePhoto):
        load_describer(model)(b"\xff\xd8\xff\xe0" + bytes(64))
    with pytest.raises(DescriberUnavailable, match="'no-such-model' cannot be loaded"):
        load_describer(replace(model, name="no-such-model"))
    with pytest.raises(DescriberUnavailable, match=r"loads here unlike the index's \(dim: 7, now 1280\)"):
        load_describer(replace(model, dim=7))
