"""Eager PyTorch end to end: the reference the pipeline's runners (ONNX Runtime, uint8 crops) are checked against."""

from __future__ import annotations

import numpy as np
import torch

from precompute.runtime import forward


def embed_scales(features: torch.nn.Module, scales: list[torch.Tensor], device: torch.device) -> np.ndarray:
    """One batch of float model inputs, at one or more sizes, to unit-length float32 embeddings.

    The pipeline does the same from uint8 crops (`precompute.embed.embed_crops`):
    the sum of each scale's unit-length descriptor, made unit length.
    """
    with torch.inference_mode():
        total = sum(_unit(forward(features, pixels.to(device, non_blocking=True), device)) for pixels in scales)
        return _unit(total).cpu().numpy()


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(rows.float().flatten(1), dim=1)
