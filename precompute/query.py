"""The web app's one way into the pipeline: photo bytes in, descriptor (or full-size picture) out.

The web app imports nothing else of the pipeline (it reads the index through
`core.index_file`). Torch is imported only when a describer is loaded, so a
dyno without it still makes full-size views (`full_size_picture`). A query goes through the very functions an
indexed photo went through: `prepare.decode_and_crop` (the same reduced-size
decode, resize and crops) and `embed.embed_crops` (the same runner, ONNX
Runtime on a CPU, and the same sum over scales), with the index's own model,
weights, pooling and scales.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.index_file import ModelInfo
from precompute.decode import DecodeError
from precompute.decoders import decode_photo

if TYPE_CHECKING:
    from precompute.models import LoadedModel


class DescriberUnavailable(Exception):
    """The index's model cannot be loaded here; the message says why."""


class UnreadablePhoto(Exception):
    """The photo cannot be decoded; the message says why."""


class Describer:
    """Photo bytes to the unit-length float32 descriptor the index would hold for that photo."""

    def __init__(self, model: LoadedModel, threads: int | None = None):
        import torch

        from precompute.runtime import make_runner

        self.specs = model.input_specs
        self.runner = make_runner(model, torch.device("cpu"), threads=threads)

    def __call__(self, data: bytes) -> np.ndarray:
        from precompute.embed import embed_crops
        from precompute.prepare import decode_and_crop

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
    import torch

    from precompute.models import ModelUnavailable, load_model

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


def full_size_picture(data: bytes, name: str) -> Image.Image:
    """The photo upright at full size, decoded as indexing decodes it (RAW, HEIC...); raises UnreadablePhoto."""
    try:
        return decode_photo(data, min_shorter=1 << 30, min_longer=1 << 30, name=name).image
    except DecodeError as err:
        raise UnreadablePhoto(str(err)) from None
