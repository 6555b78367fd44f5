"""torchvision's own ResNet18 as the reference the resnet18 path is checked against.

Real ImageNet weights can't be downloaded on CI, so the weights are random,
saved to a file like a downloaded checkpoint: they prove the wiring, not the quality.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models import resnet18


def save_random_weights(path: Path, seed: int) -> Path:
    """A ResNet18 state dict with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    model = resnet18(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), path)
    return path


def layer_output(weights_file: Path, batch: torch.Tensor, layer: str) -> torch.Tensor:
    """What torchvision's ResNet18 with these weights computes at `layer`, captured with a hook."""
    model = resnet18(weights=None)
    model.load_state_dict(torch.load(weights_file, weights_only=True))
    model.eval()
    captured = {}
    getattr(model, layer).register_forward_hook(lambda module, inputs, output: captured.update(output=output))
    with torch.inference_mode():
        model(batch)
    return captured["output"]
