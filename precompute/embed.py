"""Step 3: embed photos in batches, with decoding overlapped in worker processes.

Inference runs through `precompute.runtime`: ONNX Runtime on a CPU, PyTorch
with mixed precision on a GPU. Embeddings come out L2-normalised float32, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from precompute.models import LoadedModel
from precompute.prepare import PreparedPhoto, prepare_photo
from precompute.runtime import Runner, make_runner, unit_rows
from precompute.scan import PhotoFile

if TYPE_CHECKING:
    from precompute.evidence import EvidenceSpec  # imports OpenCV: only where evidence is extracted


class _PhotoDataset(Dataset):
    def __init__(self, photos: Sequence[PhotoFile], model: LoadedModel, thumbnail_dir: Path, evidence: EvidenceSpec | None):
        self.photos = photos
        self.specs = model.input_specs
        self.thumbnail_dir = thumbnail_dir
        self.evidence = evidence

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, position: int) -> PreparedPhoto:
        return prepare_photo(position, self.photos[position], self.specs, self.thumbnail_dir, self.evidence)


def _leave_interrupts_to_the_main_process(worker_id: int) -> None:
    """Ctrl-C and `kill` reach the whole process group; the main process stops the workers cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _keep_as_is(photo: PreparedPhoto) -> PreparedPhoto:
    return photo


def _batches(items: Iterable[PreparedPhoto], size: int) -> Iterator[list[PreparedPhoto]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass
class EmbeddedPhotos:
    embeddings: np.ndarray  # (number embedded, dim), float32, rows of unit length
    infos: list[dict]  # one per embedded photo, in the order of `photos`
    failures: list[tuple[int, str]]  # (position in `photos`, reason)
    evidence: list = field(default_factory=list)  # PhotoEvidence per embedded photo, when extracted; else empty


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
    runner: Runner | None = None,
    on_progress: Callable[[int], None] | None = None,
    evidence: EvidenceSpec | None = None,
) -> EmbeddedPhotos:
    """Decode, thumbnail and embed `photos`; failures are collected, not raised.

    With `evidence`, the workers also extract each photo's instance evidence (`precompute.evidence`).

    `runner` defaults to the fastest one for `device` (see `precompute.runtime`).
    """
    device = device or pick_device()
    workers = default_workers() if workers is None else workers
    runner = runner or make_runner(model, device)
    # Workers hand over single photos, round robin, and batches are formed here:
    # a worker preparing a whole batch alone would leave the others idle while
    # the pipeline fills, and for collections smaller than workers × batch.
    loader = DataLoader(
        _PhotoDataset(photos, model, thumbnail_dir, evidence),
        batch_size=None,
        num_workers=workers,
        collate_fn=_keep_as_is,
        prefetch_factor=batch_size if workers else None,
        pin_memory=device.type == "cuda",
        worker_init_fn=_leave_interrupts_to_the_main_process,
    )
    parts = []
    for batch in _batches(loader, batch_size):
        parts.append(embed_batch(runner, batch, model.dim))
        if on_progress:
            on_progress(len(batch))
    return concatenate(parts, model.dim)


def embed_batch(runner: Runner, batch: Sequence[PreparedPhoto], dim: int) -> EmbeddedPhotos:
    """One batch of prepared photos through the model; photos that failed to prepare become failures.

    A local run calls this in its main process, a cluster run in its embedding actors.
    """
    good = [item for item in batch if item.error is None]
    failures = [(item.position, item.error) for item in batch if item.error is not None]
    if not good:
        return EmbeddedPhotos(np.zeros((0, dim), np.float32), [], failures)
    evidence = [item.evidence for item in good] if all(item.evidence is not None for item in good) else []
    return EmbeddedPhotos(embed_crops(runner, [item.pixels for item in good]), [item.info for item in good], failures, evidence)


def concatenate(parts: Sequence[EmbeddedPhotos], dim: int) -> EmbeddedPhotos:
    """Batches' results joined, in the order given."""
    embeddings = np.concatenate([part.embeddings for part in parts]) if parts else np.zeros((0, dim), np.float32)
    infos = [info for part in parts for info in part.infos]
    evidence = [photo for part in parts for photo in part.evidence]
    return EmbeddedPhotos(embeddings, infos, [failure for part in parts for failure in part.failures],
                          evidence if len(evidence) == len(infos) else [])


def embed_crops(runner: Runner, crops: Sequence[list[np.ndarray]]) -> np.ndarray:
    """Photos' uint8 crops (per photo, one per scale) to their unit-length descriptors: a batch through `runner`.

    A multi-scale descriptor is the sum of the unit-length descriptors of each scale, made unit length.
    """
    per_scale = [runner(np.stack(same_scale)) for same_scale in zip(*crops)]
    return unit_rows(sum(per_scale))
