"""Step 3: embed photos in batches, with decoding overlapped in worker processes.

Inference runs under `torch.inference_mode()`, on the GPU with mixed
precision when there is one. Embeddings come out L2-normalised float32, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from precompute.models import LoadedModel
from precompute.prepare import PreparedPhoto, prepare_photo
from precompute.scan import PhotoFile


class _PhotoDataset(Dataset):
    def __init__(self, photos: Sequence[PhotoFile], model: LoadedModel, thumbnail_dir: Path):
        self.photos = photos
        self.specs = model.input_specs
        self.thumbnail_dir = thumbnail_dir

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, position: int) -> PreparedPhoto:
        return prepare_photo(position, self.photos[position], self.specs, self.thumbnail_dir)


def _leave_interrupts_to_the_main_process(worker_id: int) -> None:
    """Ctrl-C and `kill` reach the whole process group; the main process stops the workers cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _keep_as_list(batch: list[PreparedPhoto]) -> list[PreparedPhoto]:
    return batch


@dataclass
class EmbeddedPhotos:
    embeddings: np.ndarray  # (number embedded, dim), float32, rows of unit length
    infos: list[dict]  # one per embedded photo, in the order of `photos`
    failures: list[tuple[int, str]]  # (position in `photos`, reason)


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def embed_photos(
    photos: Sequence[PhotoFile],
    model: LoadedModel,
    thumbnail_dir: Path,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    device: torch.device | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EmbeddedPhotos:
    """Decode, thumbnail and embed `photos`; failures are collected, not raised."""
    device = device or pick_device()
    workers = default_workers() if workers is None else workers
    features = model.features.to(device).eval()
    loader = DataLoader(
        _PhotoDataset(photos, model, thumbnail_dir),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_keep_as_list,
        pin_memory=device.type == "cuda",
        worker_init_fn=_leave_interrupts_to_the_main_process,
    )
    chunks: list[np.ndarray] = []
    infos: list[dict] = []
    failures: list[tuple[int, str]] = []
    for batch in loader:
        good = [item for item in batch if item.error is None]
        failures.extend((item.position, item.error) for item in batch if item.error is not None)
        if good:
            scales = [torch.from_numpy(np.stack(per_scale)) for per_scale in zip(*(item.pixels for item in good))]
            chunks.append(embed_scales(features, scales, device))
            infos.extend(item.info for item in good)
        if on_progress:
            on_progress(len(batch))
    dim = model.dim
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return EmbeddedPhotos(embeddings, infos, failures)


def embed_scales(features: torch.nn.Module, scales: list[torch.Tensor], device: torch.device) -> np.ndarray:
    """One batch, given at one or more input sizes, to unit-length float32 embeddings.

    Multi-scale descriptors are the sum of the unit-length descriptors of each scale.
    """
    with torch.inference_mode():
        total = sum(_unit_rows(_forward(features, pixels.to(device, non_blocking=True), device)) for pixels in scales)
        return _unit_rows(total).cpu().numpy()


def _forward(features: torch.nn.Module, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            return features(pixels).float()
    return features(pixels)


def _unit_rows(rows: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(rows.float().flatten(1), dim=1)
