"""Search by photo's one way into the pipeline: photo bytes in, descriptor out, as the index embedded its photos.

The web app imports nothing else of the pipeline to search (it reads the
index through `index_file`). A query goes through the very functions an
indexed photo went through: `prepare.decode_and_crop` (the same reduced-size
decode, resize and crops) and `embed.embed_crops` (the same runner, ONNX
Runtime on a CPU, and the same sum over scales), with the index's own model,
weights, pooling and scales.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.index_file import ModelInfo
from precompute.decode import DecodeError
from precompute.embed import embed_crops
from precompute.models import LoadedModel, ModelUnavailable, load_model
from precompute.prepare import decode_and_crop
from precompute.runtime import make_runner


class DescriberUnavailable(Exception):
    """The index's model cannot be loaded here; the message says why."""


class UnreadablePhoto(Exception):
    """The photo cannot be decoded; the message says why."""


class Describer:
    """Photo bytes to the unit-length float32 descriptor the index would hold for that photo."""

    def __init__(self, model: LoadedModel, threads: int | None = None):
        self.specs = model.input_specs
        self.runner = make_runner(model, torch.device("cpu"), threads=threads)

    def __call__(self, data: bytes) -> np.ndarray:
        try:
            _, _, crops = decode_and_crop(data, self.specs)
        except DecodeError as err:
            raise UnreadablePhoto(str(err)) from None
        return embed_crops(self.runner, [crops])[0]


def load_describer(model_info: ModelInfo, threads: int | None = None) -> Describer:
    """The describer for an index whose `model` entry is `model_info`; raises DescriberUnavailable.

    `threads`: the cores one query may use, in ONNX Runtime and in torch's
    resizing (by default each takes every core, in every web worker at once).
    """
    if threads:
        torch.set_num_threads(threads)
    name = model_info.name
    try:
        model = load_model(name, _weights_file(model_info), model_info.pooling, model_info.scales, model_info.flip)
    except ModelUnavailable as err:
        raise DescriberUnavailable(f"the index's model {name!r} cannot be loaded ({err})") from None
    # The name, pooling and scales were the index's own, and the same weights may be found in another place here.
    mismatch = model_info.mismatch(ModelInfo.from_dict(model.describe()), keys=("dim", "preprocessing", "flip"))
    if mismatch:
        raise DescriberUnavailable(f"model {name!r} loads here unlike the index's ({mismatch})")
    return Describer(model, threads)


def _weights_file(model_info: ModelInfo) -> Path | None:
    """The weights file the index was built with, when it came from `--weights FILE`."""
    source = model_info.weights
    return Path(source.removeprefix("file ")) if source.startswith("file ") else None
