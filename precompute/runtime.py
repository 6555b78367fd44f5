"""Run a model's feature extractor as fast as the hardware allows, with the same embeddings.

On a CPU the model is exported once to ONNX and run by ONNX Runtime, which is
several times faster than eager PyTorch there (EfficientNet's depthwise
convolutions most of all) and agrees with it to about 1e-6. The exported graph
is cached on disk, keyed by the weights, so later runs skip the export. On a
GPU, PyTorch runs the model under fp16 autocast. PyTorch on the CPU remains as
the fallback when ONNX Runtime is not installed.

Runners take the uint8 crops of `resize.model_crop` and normalise them
inside the model, so decoding workers send a quarter of the bytes. Every runner
returns L2-normalised float32 rows, so a dot product is a cosine.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from core.atomic_write import atomic_file
from precompute.models import LoadedModel
from precompute.preprocess import Preprocessing

BACKENDS = ("auto", "onnxruntime", "torch")
_ONNX_OPSET = 17


class Runner(Protocol):
    name: str

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """A batch of uint8 crops (B, H, W, 3) to unit-length float32 embeddings (B, dim)."""


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (all-zero rows stay zero), as torch.nn.functional.normalize does."""
    rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class FromCrops(torch.nn.Module):
    """The model's features, fed uint8 HWC crops: `preprocess.normalise` done inside the graph."""

    def __init__(self, features: torch.nn.Module, spec: Preprocessing):
        super().__init__()
        self.features = features
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        pixels = crops.permute(0, 3, 1, 2).float()
        return self.features((pixels - self.mean) / self.std)


class TorchRunner:
    """PyTorch under inference_mode; fp16 autocast on CUDA."""

    name = "torch"

    def __init__(self, model: LoadedModel, device: torch.device):
        self.device = device
        self.features = FromCrops(model.features, model.preprocessing).to(device).eval()
        if device.type == "cuda":
            self.name = "torch-cuda-fp16"

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            output = forward(self.features, torch.from_numpy(crops).to(self.device, non_blocking=True), self.device)
            return unit_rows(output.cpu().numpy())


def forward(features: torch.nn.Module, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The model on one batch, in fp16 autocast on CUDA; float32 out."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            return features(batch).float()
    return features(batch)


class OnnxRunner:
    """ONNX Runtime on the CPU, sized for the cores that the decoding workers leave free."""

    name = "onnxruntime"

    def __init__(self, model: LoadedModel, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Spinning threads would steal the cores that decode the next batch.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(onnx_model(model), options, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cached graph: ONNX Runtime's errors share no base class but Exception
            data = onnx_model(model, use_cache=False)
            self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        (output,) = self.session.run(None, {self.input_name: np.ascontiguousarray(crops, dtype=np.uint8)})
        return unit_rows(output)


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_runner(model: LoadedModel, device: torch.device, backend: str = "auto", threads: int | None = None) -> Runner:
    """The fastest runner for `device`: ONNX Runtime on a CPU when installed, else PyTorch."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnxruntime" or (backend == "auto" and device.type == "cpu" and onnx_available()):
        if device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU only")
        return OnnxRunner(model, threads)
    if threads and device.type == "cpu":
        torch.set_num_threads(threads)
    return TorchRunner(model, device)


def onnx_model(model: LoadedModel, use_cache: bool = True) -> bytes:
    """The model's features as an ONNX graph, from the cache or exported (and cached) now."""
    features = FromCrops(model.features, model.preprocessing).cpu().eval()
    cache = onnx_cache_dir() / f"{model.name}-{model.pooling}-{_weights_key(features)}.onnx"
    if use_cache:
        try:
            return cache.read_bytes()
        except OSError:
            pass
    buffer = io.BytesIO()
    example = torch.zeros(1, model.preprocessing.crop, model.preprocessing.crop, 3, dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing are not for our users
        torch.onnx.export(
            features,
            example,
            buffer,
            input_names=["crops"],
            output_names=["features"],
            dynamic_axes={"crops": {0: "batch", 1: "height", 2: "width"}, "features": {0: "batch"}},
            opset_version=_ONNX_OPSET,
            dynamo=False,
        )
    data = buffer.getvalue()
    _write_cache(cache, data)
    return data


def _weights_key(features: torch.nn.Module) -> str:
    """Identifies the exact weights and exporter, so a cached graph is never stale."""
    digest = hashlib.sha1(f"{torch.__version__}/{_ONNX_OPSET}/{features!r}".encode())
    for name, tensor in features.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def onnx_cache_dir() -> Path:
    """$LOOKALIKE_CACHE/onnx, by default ~/.cache/lookalike/onnx."""
    root = os.environ.get("LOOKALIKE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lookalike"
    return Path(root) / "onnx"


def _write_cache(target: Path, data: bytes) -> None:
    """Best effort and atomic: a cache that can't be written only costs the next run an export."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target, owner_only=True, durable=False) as out:  # a per-user cache, like the rest of ~/.cache
            out.write(data)
    except OSError:
        pass
